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
import { createHash, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { invalidParameter } from '@ledgerflow/contracts';
import { BackgroundHash } from './background-hash.js';
import { confineArtifactPath } from './artifact-path.js';
import {
  BlobNotFoundError,
  type BlobEntry,
  type BlobStore,
  type ByteRange,
  type StoredBlob,
} from './blob-store.js';

/** Bytes gathered from the request before one writev; one such write is in flight while the next fills. */
const WRITE_BATCH_BYTES = 4 * 1024 * 1024;

/** Writes every buffer, continuing after a short write. */
async function writeAll(handle: FileHandle, buffers: Buffer[]): Promise<void> {
  let pending = buffers;
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending);
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

/** Written bytes between the early fdatasyncs of a large upload. */
const EARLY_SYNC_BYTES = 64 * 1024 * 1024;

/** Bytes handed to the hash worker and not hashed yet, beyond which an upload waits for it. */
const MAX_UNHASHED_BYTES = 2 * WRITE_BATCH_BYTES;

/**
 * Streams the body into the file, hashing it on the way. Chunks from the socket are gathered into
 * ~4 MiB batches, and the next batch is read while the previous one is written (the write runs in
 * libuv's thread pool), so receiving and writing overlap instead of taking turns per 64 KiB chunk.
 * A body larger than one batch is hashed on a worker thread (BackgroundHash): each batch is merged
 * into one buffer (reused once hashed), written, then transferred to the worker, so the event loop only receives and
 * copies. A smaller body is hashed here. Memory stays bounded whatever the size: two batches, plus
 * at most MAX_UNHASHED_BYTES waiting for the worker.
 */
async function writeHashed(
  body: Readable,
  handle: FileHandle,
): Promise<{ size: number; sha256: string }> {
  let background: BackgroundHash | undefined;
  let size = 0;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  let inFlight: Promise<void> | undefined;
  let failure: { error: unknown } | undefined;
  // an fdatasync every EARLY_SYNC_BYTES, beside the writes: the disk takes the file as it comes,
  // so the fsync before the rename waits for the last stretch only, not the whole file
  let syncing: Promise<void> | undefined;
  let unsyncedBytes = 0;
  const flush = async (): Promise<void> => {
    if (inFlight !== undefined) await inFlight;
    if (failure !== undefined) throw failure.error;
    if (unsyncedBytes >= EARLY_SYNC_BYTES && syncing === undefined) {
      unsyncedBytes = 0;
      syncing = handle
        .datasync()
        .catch((error: unknown) => {
          failure ??= { error };
        })
        .finally(() => (syncing = undefined));
    }
    unsyncedBytes += batchBytes;
    background ??= new BackgroundHash();
    await background.drain(MAX_UNHASHED_BYTES);
    const merged = background.take(batchBytes);
    let at = 0;
    for (const buf of batch) at += buf.copy(merged, at);
    batch = [];
    batchBytes = 0;
    const hash = background;
    inFlight = writeAll(handle, [merged])
      .then(() => hash.update(merged))
      .catch((error: unknown) => {
        failure = { error };
      });
  };
  try {
    for await (const chunk of body) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      size += buf.length;
      batch.push(buf);
      batchBytes += buf.length;
      if (batchBytes >= WRITE_BATCH_BYTES) await flush();
    }
    if (background === undefined) {
      // all of it fits in one batch: hash it here, no worker round trip
      const hash = createHash('sha256');
      for (const buf of batch) hash.update(buf);
      await writeAll(handle, batch);
      return { size, sha256: hash.digest('hex') };
    }
    if (batchBytes > 0) await flush();
  } catch (error) {
    background?.abort();
    throw error;
  } finally {
    // never leave a write or sync running on a handle the caller is about to close
    if (inFlight !== undefined) await inFlight;
    if (syncing !== undefined) await syncing;
  }
  if (failure !== undefined) {
    background.abort();
    throw failure.error;
  }
  return { size, sha256: await background.digest() };
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
    try {
      written = await writeHashed(body, handle);
      // one fsync, at the end, before the rename makes the file visible
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
