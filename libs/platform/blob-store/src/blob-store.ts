import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { MlflowError } from '@ledgerflow/contracts';

/** What was stored: the canonical path, its size in bytes and the sha256 (hex) of its content. */
export interface StoredBlob {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

/** One entry of a directory listing: the base name, and the size of files. */
export interface BlobEntry {
  readonly name: string;
  readonly isDir: boolean;
  /** Bytes; undefined for directories. */
  readonly size?: number;
}

/** An inclusive byte range, as in HTTP Range: bytes=start-end. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** A part uploaded to a multipart upload. */
export interface UploadedPart {
  readonly partNumber: number;
  readonly etag: string;
}

/** Multipart uploads, where the adapter has a native form of them (S3). */
export interface BlobMultipart {
  /** Starts an upload to `path`; returns its upload id. */
  create(path: string): Promise<string>;
  /** A URL the client may PUT one part to directly (presigned), valid for `expirySeconds`. */
  partUploadUrl(
    path: string,
    uploadId: string,
    partNumber: number,
    expirySeconds: number,
  ): Promise<string>;
  /** Uploads one part through this process. */
  uploadPart(
    path: string,
    uploadId: string,
    partNumber: number,
    body: Buffer,
  ): Promise<UploadedPart>;
  /** Assembles the parts; returns what was stored (the content is re-read to hash it). */
  complete(path: string, uploadId: string, parts: readonly UploadedPart[]): Promise<StoredBlob>;
  abort(path: string, uploadId: string): Promise<void>;
}

/**
 * The blob-store port: artifact bytes by canonical relative path (see confineArtifactPath, which
 * every method applies again so no adapter trusts its caller). Bodies are streams in both
 * directions; nothing holds a whole file in memory.
 */
export interface BlobStore {
  readonly kind: 'local' | 's3';
  /** Where the blobs live, for messages (a folder or s3://bucket/prefix). */
  readonly location: string;
  /** Stores the stream at `path`, replacing any file there; size and sha256 are computed on the way. */
  put(path: string, body: Readable): Promise<StoredBlob>;
  /** The file's bytes, or one range of them. Throws BlobNotFoundError for a missing file. */
  get(path: string, range?: ByteRange): Promise<Readable>;
  /** Size of a file, `dir` for a directory, undefined when nothing is there. */
  stat(path: string): Promise<{ isDir: false; size: number } | { isDir: true } | undefined>;
  /** One directory level, sorted by name; a missing path or a file gives []. */
  list(dir: string): Promise<BlobEntry[]>;
  /** Every file under `dir` (recursively), as canonical paths, sorted. */
  walk(dir: string): AsyncIterable<string>;
  /** Deletes a file, or a directory and everything under it; nothing there is not an error. */
  delete(path: string): Promise<void>;
  /** Native multipart uploads; undefined when the adapter has none (the local folder). */
  readonly multipart: BlobMultipart | undefined;
  close(): Promise<void>;
}

/** Nothing is stored at the path (404 RESOURCE_DOES_NOT_EXIST). */
export class BlobNotFoundError extends MlflowError {
  constructor(path: string) {
    super('RESOURCE_DOES_NOT_EXIST', `No artifact found at '${path}'`);
  }
}

/** sha256 and size of a stream's whole content, reading it to the end. */
export async function digestOf(stream: Readable): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    const buf = chunk as Buffer;
    hash.update(buf);
    size += buf.length;
  }
  return { size, sha256: hash.digest('hex') };
}
