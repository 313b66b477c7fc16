// upload-sink: the bound the artifact benchmark holds Ledgerflow's local upload against. A native
// HTTP server (Go's net/http) that stores each PUT body in a file, the way Ledgerflow's local
// adapter does and with nothing else: the body read into 256 KiB buffers, written in 256 KiB
// writes, an fdatasync every 64 MiB beside the writes and one at the end, before the reply. With
// -sha256 it also hashes every byte on a goroutine of its own, as Ledgerflow must before it records
// the upload. Without it, it is the machine's own socket-to-disk ceiling for an HTTP upload.
//
//	upload-sink -dir DIR [-sha256]   prints its port on stdout, then serves until killed
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
)

const (
	bufBytes       = 256 * 1024
	buffers        = 64 // 16 MiB in flight at most
	earlySyncBytes = 64 << 20
)

type chunk struct {
	buf  []byte
	n    int
	refs *atomic.Int32
}

// store writes body to a new file in f, synced; its size and (with hash) its sha256.
func store(f *os.File, hash bool, body io.Reader) (int64, string, error) {

	free := make(chan []byte, buffers)
	for i := 0; i < buffers; i++ {
		free <- make([]byte, bufBytes)
	}
	release := func(c chunk) {
		if c.refs.Add(-1) == 0 {
			free <- c.buf
		}
	}
	toWrite := make(chan chunk, buffers)
	toHash := make(chan chunk, buffers)
	var wg sync.WaitGroup
	var writeErr error
	wg.Add(1)
	go func() { // the writer, with its early fdatasyncs beside it
		defer wg.Done()
		var unsynced int64
		syncing := make(chan struct{}, 1)
		for c := range toWrite {
			if writeErr == nil {
				if _, err := f.Write(c.buf[:c.n]); err != nil {
					writeErr = err
				}
			}
			release(c)
			if unsynced += int64(c.n); unsynced >= earlySyncBytes {
				select {
				case syncing <- struct{}{}:
					unsynced = 0
					go func() { syscall.Fdatasync(int(f.Fd())); <-syncing }()
				default:
				}
			}
		}
		syncing <- struct{}{}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil && writeErr == nil {
			writeErr = err
		}
	}()
	h := sha256.New()
	if hash {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range toHash {
				h.Write(c.buf[:c.n])
				release(c)
			}
		}()
	}
	var size int64
	var readErr error
	for readErr == nil {
		buf := <-free
		n, err := io.ReadFull(body, buf)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = nil
			readErr = io.EOF
		} else if err != nil {
			readErr = err
		}
		if n == 0 {
			free <- buf
			continue
		}
		size += int64(n)
		refs := &atomic.Int32{}
		if hash {
			refs.Store(2)
			toHash <- chunk{buf, n, refs}
		} else {
			refs.Store(1)
		}
		toWrite <- chunk{buf, n, refs}
	}
	close(toWrite)
	close(toHash)
	wg.Wait()
	if readErr != io.EOF {
		return 0, "", readErr
	}
	if writeErr != nil {
		return 0, "", writeErr
	}
	sum := ""
	if hash {
		sum = hex.EncodeToString(h.Sum(nil))
	}
	return size, sum, nil
}

func main() {
	dir := flag.String("dir", "", "where uploads are written (removed once stored)")
	hash := flag.Bool("sha256", false, "hash every byte on a goroutine of its own")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "upload-sink: -dir is required")
		os.Exit(2)
	}
	if err := os.MkdirAll(filepath.Clean(*dir), 0o755); err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			http.Error(w, "PUT only", http.StatusMethodNotAllowed)
			return
		}
		f, err := os.CreateTemp(*dir, "upload-*.part")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		// removed once the reply is out, as the bench removes its other copies outside the timing
		defer os.Remove(f.Name())
		defer f.Close()
		size, sum, err := store(f, *hash, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"size":%d,"sha256":%q}`, size, sum)
		w.(http.Flusher).Flush()
	})
	panic(http.Serve(ln, handler))
}
