import { createHash } from 'node:crypto';
import { finished, type Readable } from 'node:stream';
import { BackgroundHash } from './background-hash.js';

/** Where an upload's bytes go, a batch at a time, in order. */
export interface BatchSink {
  /**
   * Stores one batch at byte offset `at`. Every batch but the last is exactly the batch size. At
   * most one call is in flight; the buffer is the caller's again once the promise settles.
   */
  batch(buf: Buffer, at: number): Promise<void>;
  /** Stores a whole body that fitted in one batch (no batch() call was made). */
  whole(chunks: readonly Buffer[], size: number): Promise<void>;
}

let mallocPrimed = false;

/**
 * Lets the C allocator keep request chunks' memory for the next chunks. Node copies every 64 KiB
 * body chunk into a fresh malloc'ed buffer, and a young-generation GC frees the last few tens of
 * MiB of them at once; with glibc's default 128 KiB trim threshold that freed heap top goes back to
 * the kernel each time and the next chunks fault it in again (page faults and page clearing took
 * about a fifth of the event loop's CPU time on a 1 GiB upload). glibc raises its mmap threshold to
 * the size of a freed mmap'ed block, and its trim threshold to twice that (mallopt(3), "dynamic
 * mmap threshold"), so one 24 MiB buffer, allocated and dropped once per process, lets up to 48 MiB
 * of freed heap be reused instead (measured: a 32 MiB trim threshold is needed, 16 MiB is not
 * enough). With another C library this is one short-lived buffer and nothing more.
 */
function primeMallocThresholds(): void {
  if (mallocPrimed) return;
  mallocPrimed = true;
  // dropped at once: the next scavenge frees it (an upload this size scavenges every few MiB)
  void new ArrayBuffer(24 * 1024 * 1024).byteLength;
}

/**
 * Streams `body` into `sink` in batches of `batchBytes`, hashing it on the way; resolves with its
 * size and sha256 once the sink has stored every byte. Chunks from the socket are copied, as they
 * arrive, into batch buffers, and a full batch is stored while the next one fills, so receiving
 * and storing overlap instead of taking turns per 64 KiB chunk. A body larger than one batch is
 * hashed on a worker thread (BackgroundHash): the batch buffers live in shared memory, each stored
 * batch is handed to the worker by reference and its buffer comes back for reuse once hashed, so
 * the event loop only receives and copies. A body that fits in one batch is hashed here and given
 * to the sink whole.
 *
 * The body is read through 'data' events, not async iteration: an iterator costs a few promises per
 * 64 KiB chunk, and a chunk held until its batch was full survived young-generation GCs; together
 * they pushed the old generation into a mark-compact every ~80 MiB of upload, in a process whose
 * heap holds the whole application. Here a chunk is copied and dropped at once.
 *
 * Memory stays bounded whatever the size: the stream is paused while a full batch waits for the
 * one being stored, or while more than `maxUnhashed` bytes wait for the worker. On any failure (the
 * body's or the sink's) the body is destroyed, the promise rejects once no sink call is in flight,
 * and nothing more reaches the sink.
 */
export function storeHashedInBatches(
  body: Readable,
  sink: BatchSink,
  batchBytes: number,
  maxUnhashed = 2 * batchBytes,
): Promise<{ size: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    let size = 0;
    // until the body outgrows one batch, its chunks are kept as they are and hashed here
    let small: Buffer[] | undefined = [];
    let smallBytes = 0;
    let background: BackgroundHash | undefined;
    let current: Buffer | undefined;
    let fill = 0;
    /** Full batches waiting for the one being stored (at most one before the body is paused). */
    const ready: Buffer[] = [];
    let storing = false;
    let ended = false;
    let paused = false;
    let failure: { error: Error } | undefined;
    let settled = false;
    /** Where the next batch goes. */
    let position = 0;

    const settle = (): void => {
      if (settled || storing) return;
      if (failure !== undefined) {
        settled = true;
        background?.abort();
        reject(failure.error);
        return;
      }
      if (!ended || ready.length > 0) return;
      settled = true;
      if (background === undefined) {
        // all of it fitted in one batch: hash it here, no worker round trip
        const hash = createHash('sha256');
        const chunks = small ?? [];
        for (const buf of chunks) hash.update(buf);
        sink.whole(chunks, size).then(() => resolve({ size, sha256: hash.digest('hex') }), reject);
        return;
      }
      background.digest().then((sha256) => resolve({ size, sha256 }), reject);
    };

    const fail = (error: unknown): void => {
      failure ??= { error: error instanceof Error ? error : new Error(String(error)) };
      if (!body.destroyed) body.destroy();
      settle();
    };

    const maybeResume = (): void => {
      if (!paused || failure !== undefined || ready.length > 0) return;
      if (background !== undefined && background.pending > maxUnhashed) return;
      paused = false;
      body.resume();
    };

    const storeNext = (): void => {
      const buf = ready.shift();
      if (buf === undefined || failure !== undefined) {
        settle();
        return;
      }
      storing = true;
      const hash = background!;
      const at = position;
      position += buf.length;
      sink
        .batch(buf, at)
        .then(() => {
          hash.update(buf); // handed to the worker: not used here again
          return hash.drain(maxUnhashed);
        })
        .then(
          () => {
            storing = false;
            storeNext();
            maybeResume();
          },
          (error: unknown) => {
            storing = false;
            fail(error);
          },
        );
    };

    const batchFull = (): void => {
      ready.push(current!);
      current = background!.take(batchBytes);
      fill = 0;
      if (!storing) storeNext();
      if (ready.length > 0 && !paused) {
        paused = true;
        body.pause();
      }
    };

    const copyIn = (chunk: Buffer): void => {
      for (let at = 0; at < chunk.length;) {
        const n = Math.min(chunk.length - at, batchBytes - fill);
        // fill(), not copy(): the batch is shared memory, which copy() (TypedArray#set) moves a
        // word at a time with relaxed atomics (a third of the event loop's time on an upload);
        // fill() with a buffer is one memcpy in Node's C++
        current!.fill(
          at === 0 && n === chunk.length ? chunk : chunk.subarray(at, at + n),
          fill,
          fill + n,
        );
        at += n;
        fill += n;
        if (fill === batchBytes) batchFull();
      }
    };

    body.on('data', (chunk: Buffer | Uint8Array | string) => {
      if (failure !== undefined) return;
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      size += buf.length;
      if (small !== undefined) {
        small.push(buf);
        smallBytes += buf.length;
        if (smallBytes < batchBytes) return;
        // the body outgrew one batch: from here on, batches are stored and hashed beside the loop
        const held = small;
        small = undefined;
        try {
          primeMallocThresholds();
          background = new BackgroundHash();
          current = background.take(batchBytes);
          for (const b of held) copyIn(b);
        } catch (error) {
          fail(error);
        }
        return;
      }
      copyIn(buf);
    });
    finished(body, (error) => {
      if (error !== undefined && error !== null) {
        fail(error);
        return;
      }
      ended = true;
      if (failure === undefined && current !== undefined && fill > 0) {
        ready.push(current.subarray(0, fill));
        current = undefined;
        if (!storing) storeNext();
      }
      settle();
    });
  });
}
