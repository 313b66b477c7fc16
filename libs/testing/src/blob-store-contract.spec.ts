import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { LocalBlobStore, S3BlobStore } from '@ledgerflow/blob-store';
import { describeBlobStoreContract } from './blob-store-contract.js';
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
