import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/**
 * sha256 on a worker thread, so a large upload's hashing (the costliest CPU work of an upload, about
 * half a second per GiB) runs beside the event loop that receives and writes the bytes. One worker
 * per process, shared by every upload; each upload bounds how many bytes may wait to be hashed.
 *
 * Batches live in shared memory. Each batch buffer is a SharedArrayBuffer ("slot") that is shown to
 * the worker once, when it is allocated; after that a batch is handed over by naming its slot, and
 * the slot comes back to a process-wide pool once hashed. An earlier version transferred an
 * ArrayBuffer per batch instead: every transfer created a new ArrayBuffer on the receiving side,
 * and a pooled one that lived long enough to reach V8's old generation kept counting its 4 MiB as
 * external memory after it had been transferred away, until the next full GC. So every 64 MiB or
 * so of upload set off a full mark of the application's heap (10-16 per GiB, about a CPU-second
 * per GiB on V8's helper threads). A slot is allocated once and never changes hands.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
const slots = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'data') {
    let h = hashes.get(m.id);
    if (h === undefined) hashes.set(m.id, (h = createHash('sha256')));
    h.update(slots.get(m.slot).subarray(m.offset, m.offset + m.length));
    parentPort.postMessage({ id: m.id, op: 'hashed', bytes: m.length, slot: m.slot });
  } else if (m.op === 'once') {
    const hex = createHash('sha256')
      .update(slots.get(m.slot).subarray(m.offset, m.offset + m.length))
      .digest('hex');
    parentPort.postMessage({ id: m.id, op: 'once', hex });
  } else if (m.op === 'slot') {
    slots.set(m.slot, new Uint8Array(m.sab));
  } else if (m.op === 'drop') {
    slots.delete(m.slot);
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
  | { readonly id: number; readonly op: 'hashed'; readonly bytes: number; readonly slot: number }
  | { readonly id: number; readonly op: 'digest' | 'once'; readonly hex: string };

interface Listener {
  reply(message: Reply): void;
  fail(error: Error): void;
}

/** A shared batch buffer the worker knows by number. */
interface Slot {
  readonly index: number;
  readonly sab: SharedArrayBuffer;
  /** The worker the slot was shown to; a slot outlives a worker that died only to be dropped. */
  readonly worker: Worker;
}

/** Idle slots kept for the next batches (4 MiB each for local uploads' batches)... */
export const IDLE_SLOTS = 6;
/**
 * ...and the most memory they may hold. It must fit the slots one upload cycles through (an S3
 * upload's are three parts of 16 MiB by default): a slot dropped from the pool is freed only once
 * the worker's isolate has collected its view of it, and the worker allocates so little that it
 * hardly ever collects. With a 24 MiB cap, every S3 part allocated a new slot and a 2 GiB upload
 * grew the server by 644 MiB (artifacts-memory.e2e.spec.ts); with this one, by 22 MiB.
 */
export const IDLE_BYTES = 64 * 1024 * 1024;

let worker: Worker | undefined;
let nextId = 1;
let nextSlot = 1;
const listeners = new Map<number, Listener>();
const slotsByBuffer = new Map<SharedArrayBuffer, Slot>();
const slotsByIndex = new Map<number, Slot>();
const idle: Slot[] = [];

function sharedWorker(): Worker {
  if (worker === undefined) {
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.on('message', (m: Reply) => {
      // a hashed slot goes back to the pool whether or not its upload is still listening
      if (m.op === 'hashed') release(slotsByIndex.get(m.slot));
      listeners.get(m.id)?.reply(m);
    });
    const fail = (error: Error): void => {
      if (worker !== w) return;
      worker = undefined;
      for (const slot of [...slotsByIndex.values()]) if (slot.worker === w) forget(slot);
      idle.length = 0;
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

function forget(slot: Slot): void {
  slotsByBuffer.delete(slot.sab);
  slotsByIndex.delete(slot.index);
}

function acquire(size: number): Slot {
  const w = sharedWorker();
  for (let i = idle.length - 1; i >= 0; i--) {
    const slot = idle[i]!;
    if (slot.sab.byteLength >= size && slot.worker === w) {
      idle.splice(i, 1);
      return slot;
    }
  }
  const slot: Slot = { index: nextSlot++, sab: new SharedArrayBuffer(size), worker: w };
  slotsByBuffer.set(slot.sab, slot);
  slotsByIndex.set(slot.index, slot);
  w.postMessage({ op: 'slot', slot: slot.index, sab: slot.sab });
  return slot;
}

/** Memory held by the idle slots. */
function idleBytes(): number {
  return idle.reduce((sum, s) => sum + s.sab.byteLength, 0);
}

function release(slot: Slot | undefined): void {
  if (slot === undefined || !slotsByIndex.has(slot.index)) return;
  if (
    slot.worker === worker &&
    idle.length < IDLE_SLOTS &&
    idleBytes() + slot.sab.byteLength <= IDLE_BYTES
  ) {
    idle.push(slot);
    return;
  }
  forget(slot);
  if (slot.worker === worker) slot.worker.postMessage({ op: 'drop', slot: slot.index });
}

/** Slots allocated so far and not dropped, and the idle ones (for tests). */
export function hashSlotsInUse(): { live: number; idle: number; idleBytes: number } {
  return {
    live: slotsByIndex.size,
    idle: idle.length,
    idleBytes: idleBytes(),
  };
}

/**
 * The sha256 of one buffer from BackgroundHash#take, computed on the worker; the buffer stays the
 * caller's, who must not change it until the promise settles. Any other buffer is hashed here.
 */
export function sha256OnWorker(buf: Buffer): Promise<string> {
  const slot = buf.buffer instanceof SharedArrayBuffer ? slotsByBuffer.get(buf.buffer) : undefined;
  if (slot === undefined || slot.worker !== worker)
    return Promise.resolve(createHash('sha256').update(buf).digest('hex'));
  const id = nextId++;
  return new Promise<string>((resolve, reject) => {
    listeners.set(id, {
      reply: (m) => {
        listeners.delete(id);
        if (m.op === 'once') resolve(m.hex);
      },
      fail: (error) => {
        listeners.delete(id);
        reject(error);
      },
    });
    slot.worker.postMessage({
      id,
      op: 'once',
      slot: slot.index,
      offset: buf.byteOffset,
      length: buf.byteLength,
    });
  });
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
  /** Slots from take() not handed over yet: given back to the pool when the upload ends. */
  private readonly held = new Set<Slot>();

  constructor() {
    listeners.set(this.id, {
      reply: (m) => {
        if (m.op === 'hashed') this.outstanding -= m.bytes;
        else this.digested?.(m.hex);
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

  /** A buffer of `size` bytes in shared memory, which update() hands over without a copy. */
  take(size: number): Buffer {
    this.check();
    const slot = acquire(size);
    this.held.add(slot);
    return Buffer.from(slot.sab, 0, size);
  }

  /**
   * Hands `buf` to the worker: by reference when it came from take(), else copied once into a slot.
   * Either way the caller must not use it again.
   */
  update(buf: Buffer): void {
    if (this.aborted) return;
    this.check();
    let slot = buf.buffer instanceof SharedArrayBuffer ? slotsByBuffer.get(buf.buffer) : undefined;
    let offset = buf.byteOffset;
    if (slot === undefined || !this.held.has(slot)) {
      slot = acquire(buf.byteLength);
      buf.copy(Buffer.from(slot.sab));
      offset = 0;
    } else this.held.delete(slot);
    this.outstanding += buf.byteLength;
    this.worker.postMessage({
      id: this.id,
      op: 'data',
      slot: slot.index,
      offset,
      length: buf.byteLength,
    });
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
    this.giveBack();
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

  /** Drops the worker's state for an upload that failed; its buffers go back to the pool. */
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.giveBack();
    listeners.delete(this.id);
    if (this.failure === undefined) this.worker.postMessage({ id: this.id, op: 'abort' });
  }

  private giveBack(): void {
    for (const slot of this.held) release(slot);
    this.held.clear();
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
