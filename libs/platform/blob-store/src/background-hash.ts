import { Worker } from 'node:worker_threads';

/**
 * sha256 on a worker thread, so a large upload's hashing (the costliest CPU work of an upload, about
 * half a second per GiB) runs beside the event loop that receives and writes the bytes. One worker
 * per process, shared by every upload; buffers are transferred to it, not copied, and each upload
 * bounds how many bytes may wait to be hashed.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'data') {
    let h = hashes.get(m.id);
    if (h === undefined) hashes.set(m.id, (h = createHash('sha256')));
    h.update(new Uint8Array(m.buf, 0, m.length));
    // the buffer goes back for reuse: hashed bytes never wait here for this thread's GC
    parentPort.postMessage({ id: m.id, op: 'hashed', bytes: m.length, buf: m.buf }, [m.buf]);
  } else if (m.op === 'end') {
    const h = hashes.get(m.id) ?? createHash('sha256');
    hashes.delete(m.id);
    parentPort.postMessage({ id: m.id, op: 'digest', hex: h.digest('hex') });
  } else if (m.op === 'abort') {
    hashes.delete(m.id);
  }
});
`;

type Reply =
  | {
      readonly id: number;
      readonly op: 'hashed';
      readonly bytes: number;
      readonly buf: ArrayBuffer;
    }
  | { readonly id: number; readonly op: 'digest'; readonly hex: string };

interface Listener {
  reply(message: Reply): void;
  fail(error: Error): void;
}

let worker: Worker | undefined;
let nextId = 1;
const listeners = new Map<number, Listener>();

function sharedWorker(): Worker {
  if (worker === undefined) {
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.on('message', (m: Reply) => listeners.get(m.id)?.reply(m));
    const fail = (error: Error): void => {
      if (worker === w) worker = undefined;
      for (const l of [...listeners.values()]) l.fail(error);
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`hash worker exited with code ${code}`)));
    // hashing in progress is awaited by its upload; an idle worker must not keep a process alive
    // (after the listeners: adding a 'message' listener refs the worker's port again)
    w.unref();
    worker = w;
  }
  return worker;
}

/** One upload's sha256, fed in order; `update` takes ownership of the buffer it is given. */
export class BackgroundHash {
  private readonly id = nextId++;
  private readonly worker = sharedWorker();
  private outstanding = 0;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private digested: ((hex: string) => void) | undefined;
  private aborted = false;
  /** Buffers from take(), which update() may transfer; hashed ones come back to `free`. */
  private readonly owned = new WeakSet<ArrayBuffer>();
  private readonly free: ArrayBuffer[] = [];

  constructor() {
    listeners.set(this.id, {
      reply: (m) => {
        if (m.op === 'hashed') {
          this.outstanding -= m.bytes;
          if (this.free.length < 4) this.free.push(m.buf);
        } else this.digested?.(m.hex);
        this.wake?.();
      },
      fail: (error) => {
        this.failure = error;
        this.wake?.();
      },
    });
  }

  /** Bytes handed over and not hashed yet. */
  get pending(): number {
    return this.outstanding;
  }

  /** A buffer of `size` bytes that update() can transfer without a copy (reused once hashed). */
  take(size: number): Buffer {
    let ab = this.free.pop();
    if (ab === undefined || ab.byteLength < size) ab = new ArrayBuffer(size);
    this.owned.add(ab);
    return Buffer.from(ab, 0, size);
  }

  /**
   * Hands `buf` to the worker: transferred when it came from take(), else copied once. Either way
   * the caller must not use it again.
   */
  update(buf: Buffer): void {
    if (this.aborted) return;
    this.check();
    let ab: ArrayBuffer;
    if (buf.byteOffset === 0 && buf.buffer instanceof ArrayBuffer && this.owned.has(buf.buffer)) {
      ab = buf.buffer;
    } else {
      ab = new ArrayBuffer(buf.byteLength);
      new Uint8Array(ab).set(buf);
    }
    this.outstanding += buf.byteLength;
    this.worker.postMessage({ id: this.id, op: 'data', buf: ab, length: buf.byteLength }, [ab]);
  }

  /** Waits until at most `bytes` are waiting to be hashed. */
  async drain(bytes: number): Promise<void> {
    while (this.outstanding > bytes) {
      this.check();
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
    this.check();
  }

  /** The hex digest of everything given to `update`. */
  async digest(): Promise<string> {
    this.check();
    try {
      return await new Promise<string>((resolve, reject) => {
        this.digested = resolve;
        this.wake = () => {
          if (this.failure !== undefined) reject(this.failure);
        };
        this.worker.postMessage({ id: this.id, op: 'end' });
      });
    } finally {
      listeners.delete(this.id);
    }
  }

  /** Drops the worker's state for an upload that failed. */
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    listeners.delete(this.id);
    if (this.failure === undefined) this.worker.postMessage({ id: this.id, op: 'abort' });
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
