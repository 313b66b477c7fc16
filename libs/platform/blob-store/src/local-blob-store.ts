import { constants, createReadStream } from 'node:fs';
import {
  lstat,
  mkdir,
  open,
  readdir,
  realpath,
  rename,
  rm,
  unlink,
  type FileHandle,
} from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { invalidParameter } from '@ledgerflow/contracts';
import { confineArtifactPath } from './artifact-path.js';
import { storeHashedInBatches, type BatchSink } from './hashed-batches.js';
import {
  BlobNotFoundError,
  type BlobEntry,
  type BlobStore,
  type ByteRange,
  type StoredBlob,
} from './blob-store.js';

/** Bytes gathered from the request before one writev; one such write is in flight while the next fills. */
const WRITE_BATCH_BYTES = 4 * 1024 * 1024;

/**
 * The most bytes one write call hands the kernel. The page cache allocates folios as large as a
 * write asks for (up to 2 MiB), and on a VM whose free memory goes back to the host (virtio page
 * reporting, 8 MiB blocks on the machines we measured) the buddy allocator keeps reported blocks
 * last: the larger the folio, the sooner it lands in memory the host must fault in again, which
 * costs up to ten times the CPU. 1 GiB written into memory idle for a few seconds took, in system
 * time (`dd`, and the same from Node): 1.9-2.5 s in 4 MiB or 2 MiB writes, 0.2-0.9 s in 1 MiB
 * writes, 0.16-0.21 s in 512, 256 or 128 KiB writes; warm memory takes ~0.17 s at any size.
 */
const MAX_WRITE_BYTES = 256 * 1024;

/** Writes `buffers` at `position`, continuing after a short write. */
async function writeGroup(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let pending = buffers;
  let at = position;
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending, at);
    if (bytesWritten === 0) throw new Error('write made no progress');
    at += bytesWritten;
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const b of pending) {
      if (skip >= b.length) skip -= b.length;
      else {
        rest.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
    }
    pending = rest;
  }
}

/** Splits buffers into groups of at most MAX_WRITE_BYTES each (slicing, never copying). */
export function writeGroups(buffers: readonly Buffer[], max = MAX_WRITE_BYTES): Buffer[][] {
  const groups: Buffer[][] = [];
  let group: Buffer[] = [];
  let bytes = 0;
  for (const buf of buffers) {
    for (let at = 0; at < buf.length;) {
      const n = Math.min(buf.length - at, max - bytes);
      group.push(at === 0 && n === buf.length ? buf : buf.subarray(at, at + n));
      at += n;
      bytes += n;
      if (bytes === max) {
        groups.push(group);
        group = [];
        bytes = 0;
      }
    }
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/**
 * Writes every buffer from `position` on, in calls of at most MAX_WRITE_BYTES issued together
 * (each at its own position, so the order they finish in does not matter). Waits for every call
 * before reporting a failure, so no write is still in flight when the caller closes the file.
 */
async function writeAll(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  const calls: Promise<void>[] = [];
  let at = position;
  for (const group of writeGroups(buffers)) {
    calls.push(writeGroup(handle, group, at));
    for (const b of group) at += b.length;
  }
  for (const r of await Promise.allSettled(calls)) if (r.status === 'rejected') throw r.reason;
}

/** Written bytes between the early fdatasyncs of a large upload. */
const EARLY_SYNC_BYTES = 64 * 1024 * 1024;

/** Bytes handed to the hash worker and not hashed yet, beyond which an upload waits for it. */
const MAX_UNHASHED_BYTES = 2 * WRITE_BATCH_BYTES;

/**
 * An upload's file: each batch is written at its position, with an fdatasync every
 * EARLY_SYNC_BYTES beside the writes, so the disk takes the file as it comes and the fsync before
 * the rename waits for the last stretch only, not the whole file.
 */
class FileSink implements BatchSink {
  private syncing: Promise<void> | undefined;
  private syncFailure: { error: unknown } | undefined;
  private unsyncedBytes = 0;

  constructor(private readonly handle: FileHandle) {}

  async batch(buf: Buffer, at: number): Promise<void> {
    if (this.syncFailure !== undefined) throw this.syncFailure.error;
    if (this.unsyncedBytes >= EARLY_SYNC_BYTES && this.syncing === undefined) {
      this.unsyncedBytes = 0;
      this.syncing = this.handle.datasync().then(
        () => {
          this.syncing = undefined;
        },
        (error: unknown) => {
          this.syncing = undefined;
          this.syncFailure ??= { error };
        },
      );
    }
    this.unsyncedBytes += buf.length;
    await writeAll(this.handle, [buf], at);
  }

  whole(chunks: readonly Buffer[]): Promise<void> {
    return writeAll(this.handle, [...chunks], 0);
  }

  /** Waits for an early fdatasync still running (none may be when the file is closed). */
  async idle(): Promise<void> {
    await this.syncing;
    if (this.syncFailure !== undefined) throw this.syncFailure.error;
  }
}

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Blobs as files under one folder. Writes go to a temp file beside the root (same filesystem) that
 * is fsynced and renamed into place, so a reader never sees half a file. No symlink is followed:
 * every existing component of a path is lstat'ed and a symlink anywhere refuses the path (400), and
 * files are opened with O_NOFOLLOW, so a link planted inside the root cannot lead out of it.
 */
export class LocalBlobStore implements BlobStore {
  readonly kind = 'local' as const;
  readonly multipart = undefined;
  private realRoot: string | undefined;

  constructor(
    /** The artifacts folder (<dataDir>/artifacts). */
    readonly root: string,
    /** Where uploads are written before the rename; must be on the root's filesystem. */
    private readonly tmpDir: string = `${root}.tmp`,
  ) {}

  get location(): string {
    return this.root;
  }

  private async ensureRoot(): Promise<string> {
    if (this.realRoot === undefined) {
      await mkdir(this.root, { recursive: true });
      await mkdir(this.tmpDir, { recursive: true });
      this.realRoot = await realpath(this.root);
    }
    return this.realRoot;
  }

  /**
   * The absolute file name of a confined path, after checking that no existing component is a
   * symlink and that the result stays under the real root.
   */
  private async fileOf(p: string, allowRoot = false): Promise<{ rel: string; abs: string }> {
    const rel = confineArtifactPath(p, { allowRoot });
    const root = await this.ensureRoot();
    const abs = rel === '' ? root : path.join(root, ...rel.split('/'));
    if (abs !== root && !abs.startsWith(root + path.sep)) throw invalidParameter('Invalid path');
    let cur = root;
    for (const seg of rel === '' ? [] : rel.split('/')) {
      cur = path.join(cur, seg);
      let st;
      try {
        st = await lstat(cur);
      } catch (e) {
        if (isMissing(e)) break;
        throw e;
      }
      if (st.isSymbolicLink()) throw invalidParameter('Invalid path');
    }
    return { rel, abs };
  }

  async put(p: string, body: Readable): Promise<StoredBlob> {
    const { rel, abs } = await this.fileOf(p);
    await mkdir(path.dirname(abs), { recursive: true }).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' || isMissing(e))
        throw invalidParameter(`Cannot store '${rel}': a file is in the way of its folder`);
      throw e;
    });
    // The folders may have been created just now: check again that none is a link.
    await this.fileOf(rel);
    const tmp = path.join(this.tmpDir, `${randomUUID()}.part`);
    const handle = await open(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
      0o644,
    );
    let written: { size: number; sha256: string };
    const sink = new FileSink(handle);
    try {
      written = await storeHashedInBatches(body, sink, WRITE_BATCH_BYTES, MAX_UNHASHED_BYTES);
      await sink.idle();
      // the last fsync, before the rename makes the file visible
      await handle.sync();
      await handle.close();
      try {
        await rename(tmp, abs);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST')
          throw invalidParameter(`Cannot store '${rel}': a folder of that name exists`);
        throw e;
      }
    } catch (e) {
      await sink.idle().catch(() => undefined);
      await handle.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    return { path: rel, size: written.size, sha256: written.sha256 };
  }

  async get(p: string, range?: ByteRange): Promise<Readable> {
    const { rel, abs } = await this.fileOf(p);
    let handle;
    try {
      handle = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (isMissing(e)) throw new BlobNotFoundError(rel);
      if (code === 'ELOOP') throw invalidParameter('Invalid path');
      throw e;
    }
    const st = await handle.stat();
    if (!st.isFile()) {
      await handle.close();
      throw new BlobNotFoundError(rel);
    }
    return createReadStream('', {
      fd: handle,
      ...(range === undefined ? {} : { start: range.start, end: range.end }),
      highWaterMark: 1024 * 1024,
    });
  }

  async stat(p: string): Promise<{ isDir: false; size: number } | { isDir: true } | undefined> {
    const { abs } = await this.fileOf(p, true);
    try {
      const st = await lstat(abs);
      if (st.isDirectory()) return { isDir: true };
      if (st.isFile()) return { isDir: false, size: st.size };
      return undefined;
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
  }

  async list(dir: string): Promise<BlobEntry[]> {
    const { abs } = await this.fileOf(dir, true);
    let entries;
    try {
      entries = await readdir(abs, { withFileTypes: true });
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
    const out: BlobEntry[] = [];
    for (const entry of entries) {
      // Links (and sockets, fifos...) are not artifacts: never listed, never followed.
      if (entry.isDirectory()) out.push({ name: entry.name, isDir: true });
      else if (entry.isFile()) {
        const st = await lstat(path.join(abs, entry.name)).catch(() => undefined);
        if (st?.isFile() === true) out.push({ name: entry.name, isDir: false, size: st.size });
      }
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async *walk(dir: string): AsyncIterable<string> {
    const { rel } = await this.fileOf(dir, true);
    for (const entry of await this.list(rel)) {
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDir) yield* this.walk(child);
      else yield child;
    }
  }

  async delete(p: string): Promise<void> {
    const { abs } = await this.fileOf(p);
    // rm does not follow links; fileOf has refused any link on the way.
    await rm(abs, { recursive: true, force: true });
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }
}
