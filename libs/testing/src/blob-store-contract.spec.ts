import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Client } from 'minio';
import { LocalBlobStore, S3BlobStore } from '@ledgerflow/blob-store';
import { describeBlobStoreContract, patternStream } from './blob-store-contract.js';
import { startLocalS3, type LocalS3 } from './seaweedfs.js';

describeBlobStoreContract('LocalBlobStore', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-blobs-'));
  return {
    store: new LocalBlobStore(path.join(dir, 'artifacts')),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

let s3: LocalS3 | undefined;
let buckets = 0;
afterAll(async () => {
  await s3?.stop();
});

describeBlobStoreContract('S3BlobStore on SeaweedFS', async () => {
  s3 ??= await startLocalS3();
  const store = new S3BlobStore({
    endpoint: s3.endpoint,
    bucket: `contract-${(buckets += 1)}`,
    prefix: 'some/prefix',
    accessKey: s3.accessKey,
    secretKey: s3.secretKey,
    region: s3.region,
    partSize: 5 * 1024 * 1024,
  });
  return { store, cleanup: async () => undefined };
});

describe('S3BlobStore multipart uploads on SeaweedFS', () => {
  const bucket = 'multipart-leftovers';
  let store: S3BlobStore;
  let client: Client;

  beforeAll(async () => {
    s3 ??= await startLocalS3();
    const url = new URL(s3.endpoint);
    client = new Client({
      endPoint: url.hostname,
      port: Number(url.port),
      useSSL: false,
      accessKey: s3.accessKey,
      secretKey: s3.secretKey,
      region: s3.region,
      pathStyle: true,
    });
    store = new S3BlobStore({
      endpoint: s3.endpoint,
      bucket,
      prefix: '',
      accessKey: s3.accessKey,
      secretKey: s3.secretKey,
      region: s3.region,
      partSize: 5 * 1024 * 1024,
    });
  }, 300_000);

  async function unfinishedUploads(): Promise<string[]> {
    const keys: string[] = [];
    for await (const u of client.listIncompleteUploads(bucket, '', true))
      keys.push((u as { key: string }).key);
    return keys;
  }

  it('aborts the multipart upload of a source that fails after some parts were sent', async () => {
    let sent = 0;
    const failing = new Readable({
      read() {
        // 12 MiB (two parts sent) and then the client goes away
        if ((sent += 1) > 12) this.destroy(new Error('client went away'));
        else this.push(Buffer.alloc(1024 * 1024, sent));
      },
    });
    await expect(store.put('broken/upload.bin', failing)).rejects.toThrow('client went away');
    expect(await store.stat('broken/upload.bin')).toBeUndefined();
    expect(await unfinishedUploads()).toEqual([]);
  });

  it('leaves no unfinished multipart upload after uploads that succeed', async () => {
    await store.put('fine/a.bin', patternStream(11 * 1024 * 1024 + 5, 3));
    await store.put('fine/a.bin', patternStream(6 * 1024 * 1024, 4));
    expect(await unfinishedUploads()).toEqual([]);
    expect(await store.stat('fine/a.bin')).toEqual({ isDir: false, size: 6 * 1024 * 1024 });
  });
});

describe('LocalBlobStore and symlinks', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-links-'));
  const root = path.join(dir, 'artifacts');
  const outside = path.join(dir, 'outside');
  const canary = path.join(outside, 'canary.txt');
  const store = new LocalBlobStore(root);

  beforeAll(async () => {
    mkdirSync(outside, { recursive: true });
    writeFileSync(canary, 'canary');
    await store.put('real/file.txt', Readable.from([Buffer.from('inside')]));
    symlinkSync(outside, path.join(root, 'escape-dir'));
    symlinkSync(canary, path.join(root, 'real', 'escape-file'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('follows no link out of the root, in any method', async () => {
    const invalid = { code: 'INVALID_PARAMETER_VALUE', message: 'Invalid path' };
    await expect(store.get('escape-dir/canary.txt')).rejects.toMatchObject(invalid);
    await expect(store.get('real/escape-file')).rejects.toMatchObject(invalid);
    await expect(
      store.put('escape-dir/canary.txt', Readable.from([Buffer.from('pwned')])),
    ).rejects.toMatchObject(invalid);
    await expect(
      store.put('escape-dir/new.txt', Readable.from([Buffer.from('pwned')])),
    ).rejects.toMatchObject(invalid);
    await expect(store.list('escape-dir')).rejects.toMatchObject(invalid);
    await expect(store.delete('escape-dir/canary.txt')).rejects.toMatchObject(invalid);
    await expect(store.stat('escape-dir/canary.txt')).rejects.toMatchObject(invalid);
    expect(readFileSync(canary, 'utf8')).toBe('canary');
  });

  it('does not list links', async () => {
    expect(await store.list('real')).toEqual([{ name: 'file.txt', isDir: false, size: 6 }]);
  });
});
