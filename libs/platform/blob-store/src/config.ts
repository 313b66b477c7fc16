import path from 'node:path';
import type { BlobStore } from './blob-store.js';
import { LocalBlobStore } from './local-blob-store.js';
import { S3BlobStore, type S3BlobStoreConfig } from './s3-blob-store.js';

/** Which blob store the artifact service uses. */
export type BlobStoreConfig =
  { readonly kind: 'local'; readonly root: string } | ({ readonly kind: 's3' } & S3BlobStoreConfig);

/** A bad blob-store setting; the message names the variable. */
export class BlobStoreConfigError extends Error {
  override readonly name = 'BlobStoreConfigError';
}

type Env = Readonly<Record<string, string | undefined>>;

function required(env: Env, name: string): string {
  const v = env[name];
  if (v === undefined || v.trim() === '')
    throw new BlobStoreConfigError(`${name} must be set when LEDGERFLOW_ARTIFACT_STORE=s3`);
  return v;
}

/**
 * Reads LEDGERFLOW_ARTIFACT_STORE (`local`, the default: <dataDir>/artifacts; or `s3`) and, for S3,
 * LEDGERFLOW_S3_ENDPOINT, LEDGERFLOW_S3_BUCKET, LEDGERFLOW_S3_PREFIX (optional),
 * LEDGERFLOW_S3_ACCESS_KEY, LEDGERFLOW_S3_SECRET_KEY and LEDGERFLOW_S3_REGION (default us-east-1).
 */
export function blobStoreConfigFromEnv(env: Env, dataDir: string): BlobStoreConfig {
  const kind = (env['LEDGERFLOW_ARTIFACT_STORE'] ?? 'local').toLowerCase();
  if (kind === 'local') return { kind: 'local', root: path.join(dataDir, 'artifacts') };
  if (kind !== 's3')
    throw new BlobStoreConfigError(
      `LEDGERFLOW_ARTIFACT_STORE must be one of local, s3, got '${env['LEDGERFLOW_ARTIFACT_STORE']}'`,
    );
  const endpoint = required(env, 'LEDGERFLOW_S3_ENDPOINT');
  if (!/^https?:\/\/[^/]+\/?$/.test(endpoint))
    throw new BlobStoreConfigError(
      `LEDGERFLOW_S3_ENDPOINT must be http(s)://host[:port], got '${endpoint}'`,
    );
  const bucket = required(env, 'LEDGERFLOW_S3_BUCKET');
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
    throw new BlobStoreConfigError(`LEDGERFLOW_S3_BUCKET is not a valid bucket name: '${bucket}'`);
  return {
    kind: 's3',
    endpoint,
    bucket,
    prefix: env['LEDGERFLOW_S3_PREFIX'] ?? '',
    accessKey: required(env, 'LEDGERFLOW_S3_ACCESS_KEY'),
    secretKey: required(env, 'LEDGERFLOW_S3_SECRET_KEY'),
    region: env['LEDGERFLOW_S3_REGION'] ?? 'us-east-1',
  };
}

/** Opens the configured adapter. */
export function openBlobStore(config: BlobStoreConfig): BlobStore {
  return config.kind === 'local' ? new LocalBlobStore(config.root) : new S3BlobStore(config);
}
