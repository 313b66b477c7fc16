import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { Client } from 'minio';
import { confineArtifactPath } from './artifact-path.js';
import { sha256OnWorker } from './background-hash.js';
import { storeHashedInBatches, type BatchSink } from './hashed-batches.js';
import {
  BlobNotFoundError,
  digestOf,
  type BlobEntry,
  type BlobMultipart,
  type BlobStore,
  type ByteRange,
  type StoredBlob,
  type UploadedPart,
} from './blob-store.js';

/** Where an S3 blob store keeps its objects and how it signs in. */
export interface S3BlobStoreConfig {
  /** http(s)://host[:port] of the S3 API. */
  readonly endpoint: string;
  readonly bucket: string;
  /** Key prefix under which every artifact lives ('' for the bucket root). */
  readonly prefix: string;
  readonly accessKey: string;
  readonly secretKey: string;
  readonly region: string;
  /**
   * Part size of streamed uploads (at least 5 MiB; 16 MiB by default). An upload holds at most
   * three parts in memory: one filling, one uploading, one being hashed.
   */
  readonly partSize?: number;
}

function isNoSuchKey(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return code === 'NoSuchKey' || code === 'NotFound' || code === 'NoSuchObject';
}

/**
 * Blobs as objects in one bucket under one key prefix, through the minio client. Keys are always
 * `<prefix><confined path>`, so nothing outside the prefix can be named. Multipart uploads are S3's
 * own, with presigned part URLs for clients that upload parts directly.
 */
export class S3BlobStore implements BlobStore {
  readonly kind = 's3' as const;
  readonly multipart: BlobMultipart;
  private readonly client: Client;
  private readonly prefix: string;
  private bucketReady: Promise<void> | undefined;
  private readonly partSize: number;

  constructor(private readonly config: S3BlobStoreConfig) {
    const url = new URL(config.endpoint);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new Error(`S3 endpoint must be http(s), got '${config.endpoint}'`);
    this.client = new Client({
      endPoint: url.hostname,
      port: url.port === '' ? undefined : Number(url.port),
      useSSL: url.protocol === 'https:',
      accessKey: config.accessKey,
      secretKey: config.secretKey,
      region: config.region,
      pathStyle: true,
      partSize: (this.partSize = config.partSize ?? 16 * 1024 * 1024),
    });
    const p = config.prefix === '' ? '' : confineArtifactPath(config.prefix, { allowRoot: true });
    this.prefix = p === '' ? '' : `${p}/`;
    this.multipart = this.makeMultipart();
  }

  get location(): string {
    return `s3://${this.config.bucket}/${this.prefix}`;
  }

  private key(p: string, allowRoot = false): { rel: string; key: string } {
    const rel = confineArtifactPath(p, { allowRoot });
    return { rel, key: `${this.prefix}${rel}` };
  }

  /**
   * Creates the bucket if it does not exist. Checked once per process: the first calls share one
   * check, and a failed check is tried again by the next call.
   */
  ensureBucket(): Promise<void> {
    this.bucketReady ??= this.createBucketIfMissing().catch((e: unknown) => {
      this.bucketReady = undefined;
      throw e;
    });
    return this.bucketReady;
  }

  private async createBucketIfMissing(): Promise<void> {
    if (await this.client.bucketExists(this.config.bucket)) return;
    try {
      await this.client.makeBucket(this.config.bucket, this.config.region);
    } catch (e) {
      // another process (a second replica) created it between the check and here
      if ((e as { code?: unknown }).code !== 'BucketAlreadyOwnedByYou') throw e;
    }
  }

  /**
   * Streams the body to S3, hashing it on the way (storeHashedInBatches): a body of up to one part
   * goes up in one PUT, a larger one as a multipart upload of its own, one part uploading while
   * the next fills, and the sha256 computed on the hash worker from the parts once sent. A failed
   * upload (the source's error, the server's) aborts its multipart upload, so no parts are left
   * behind. A new multipart upload is created every time: the minio client's streamed putObject
   * instead resumes the newest unfinished upload of the same key, which is how two concurrent
   * uploads of one path came to write into each other's parts.
   */
  async put(p: string, body: Readable): Promise<StoredBlob> {
    const { rel, key } = this.key(p);
    await this.ensureBucket();
    const bucket = this.config.bucket;
    let uploadId: string | undefined;
    const parts: { part: number; etag: string }[] = [];
    const sink: BatchSink = {
      batch: async (buf) => {
        uploadId ??= await this.client.initiateNewMultipartUpload(bucket, key, {});
        const part = parts.length + 1;
        parts.push({ part, etag: await this.uploadPart(key, uploadId, part, buf) });
      },
      whole: async (chunks, size) => {
        await this.client.putObject(bucket, key, Buffer.concat(chunks, size), size);
      },
    };
    try {
      const { size, sha256 } = await storeHashedInBatches(body, sink, this.partSize, this.partSize);
      if (uploadId !== undefined)
        await this.client.completeMultipartUpload(bucket, key, uploadId, parts);
      return { path: rel, size, sha256 };
    } catch (e) {
      if (uploadId !== undefined)
        await this.client.abortMultipartUpload(bucket, key, uploadId).catch(() => undefined);
      throw e;
    }
  }

  /**
   * Uploads one part of a streamed upload; its ETag. Over plain http, S3's signature covers the
   * payload's sha256, which the `minio` client would compute on the event loop (half a CPU-second
   * per GiB): it is computed on the hash worker instead, from the part's shared-memory slot. Over
   * https the payload is not signed (UNSIGNED-PAYLOAD, as the client does).
   */
  private async uploadPart(
    key: string,
    uploadId: string,
    part: number,
    buf: Buffer,
  ): Promise<string> {
    const sha256 = this.client.enableSHA256 ? await sha256OnWorker(buf) : '';
    const res = await this.client.makeRequestStreamAsync(
      {
        method: 'PUT',
        bucketName: this.config.bucket,
        objectName: key,
        query: `partNumber=${part}&uploadId=${uploadId}`, // as the client itself sends it
        headers: { 'content-length': String(buf.length) },
      },
      buf,
      sha256,
      [200],
      this.config.region,
    );
    res.resume();
    await finished(res);
    const etag = res.headers.etag;
    if (typeof etag !== 'string' || etag === '')
      throw new Error(`S3 answered part ${part} of ${key} without an ETag`);
    return etag.replace(/^"|"$/g, '');
  }

  /** Whether any object (not a folder marker) lies under the key prefix. */
  private async hasObjectsUnder(dirPrefix: string): Promise<boolean> {
    for await (const raw of this.client.listObjectsV2(this.config.bucket, dirPrefix, true)) {
      const item = raw as { name?: string };
      if (item.name !== undefined && !item.name.endsWith('/')) return true;
    }
    return false;
  }

  async get(p: string, range?: ByteRange): Promise<Readable> {
    const { rel, key } = this.key(p);
    await this.ensureBucket();
    try {
      if (range === undefined) return await this.client.getObject(this.config.bucket, key);
      return await this.client.getPartialObject(
        this.config.bucket,
        key,
        range.start,
        range.end - range.start + 1,
      );
    } catch (e) {
      if (isNoSuchKey(e)) throw new BlobNotFoundError(rel);
      throw e;
    }
  }

  async stat(p: string): Promise<{ isDir: false; size: number } | { isDir: true } | undefined> {
    const { rel, key } = this.key(p, true);
    await this.ensureBucket();
    if (rel !== '') {
      try {
        const st = await this.client.statObject(this.config.bucket, key);
        return { isDir: false, size: st.size };
      } catch (e) {
        if (!isNoSuchKey(e)) throw e;
      }
    }
    const dirPrefix = rel === '' ? this.prefix : `${key}/`;
    return (await this.hasObjectsUnder(dirPrefix)) ? { isDir: true } : undefined;
  }

  async list(dir: string): Promise<BlobEntry[]> {
    const { rel, key } = this.key(dir, true);
    await this.ensureBucket();
    const dirPrefix = rel === '' ? this.prefix : `${key}/`;
    const out: BlobEntry[] = [];
    for await (const raw of this.client.listObjectsV2(this.config.bucket, dirPrefix, false)) {
      const item = raw as { name?: string; prefix?: string; size?: number };
      if (item.prefix !== undefined) {
        const name = item.prefix.slice(dirPrefix.length).replace(/\/$/, '');
        // Some servers (SeaweedFS) keep emptied folders: only folders holding files are listed.
        if (name !== '' && (await this.hasObjectsUnder(item.prefix)))
          out.push({ name, isDir: true });
      } else if (item.name !== undefined) {
        const name = item.name.slice(dirPrefix.length);
        if (name !== '' && !name.includes('/'))
          out.push({ name, isDir: false, size: item.size ?? 0 });
      }
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async *walk(dir: string): AsyncIterable<string> {
    const { rel, key } = this.key(dir, true);
    await this.ensureBucket();
    const dirPrefix = rel === '' ? this.prefix : `${key}/`;
    const names: string[] = [];
    for await (const raw of this.client.listObjectsV2(this.config.bucket, dirPrefix, true)) {
      const item = raw as { name?: string };
      if (item.name !== undefined && !item.name.endsWith('/'))
        names.push(item.name.slice(this.prefix.length));
    }
    yield* names.sort();
  }

  async delete(p: string): Promise<void> {
    const { rel, key } = this.key(p);
    await this.ensureBucket();
    const keys: string[] = [key];
    for await (const name of this.walk(rel)) keys.push(`${this.prefix}${name}`);
    for (let i = 0; i < keys.length; i += 1000) {
      await this.client.removeObjects(this.config.bucket, keys.slice(i, i + 1000));
    }
  }

  private makeMultipart(): BlobMultipart {
    const bucket = this.config.bucket;
    return {
      create: async (p) => {
        await this.ensureBucket();
        return this.client.initiateNewMultipartUpload(bucket, this.key(p).key, {});
      },
      partUploadUrl: async (p, uploadId, partNumber, expirySeconds) =>
        this.client.presignedUrl('PUT', bucket, this.key(p).key, expirySeconds, {
          partNumber: String(partNumber),
          uploadId,
        }),
      uploadPart: async (p, uploadId, partNumber, body) => {
        const r = await this.client.uploadPart(
          {
            bucketName: bucket,
            objectName: this.key(p).key,
            uploadID: uploadId,
            partNumber,
            headers: {},
          },
          body,
        );
        return { partNumber, etag: r.etag };
      },
      complete: async (p, uploadId, parts: readonly UploadedPart[]) => {
        const { rel, key } = this.key(p);
        await this.client.completeMultipartUpload(
          bucket,
          key,
          uploadId,
          [...parts]
            .sort((a, b) => a.partNumber - b.partNumber)
            .map((part) => ({ part: part.partNumber, etag: part.etag.replace(/^"|"$/g, '') })),
        );
        // The parts never passed through here as one stream: read the object back to hash it.
        const { size, sha256 } = await digestOf(await this.client.getObject(bucket, key));
        return { path: rel, size, sha256 };
      },
      abort: async (p, uploadId) => {
        await this.client.abortMultipartUpload(bucket, this.key(p).key, uploadId);
      },
    };
  }

  async close(): Promise<void> {
    // The minio client keeps no connections that need closing (the agent's sockets are unref'd).
  }
}
