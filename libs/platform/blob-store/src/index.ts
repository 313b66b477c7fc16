export { confineArtifactPath, joinArtifactPath, splitArtifactPath } from './artifact-path.js';
export {
  BlobNotFoundError,
  digestOf,
  type BlobEntry,
  type BlobMultipart,
  type BlobStore,
  type ByteRange,
  type StoredBlob,
  type UploadedPart,
} from './blob-store.js';
export {
  blobStoreConfigFromEnv,
  BlobStoreConfigError,
  openBlobStore,
  type BlobStoreConfig,
} from './config.js';
export { LocalBlobStore } from './local-blob-store.js';
export { S3BlobStore, type S3BlobStoreConfig } from './s3-blob-store.js';
