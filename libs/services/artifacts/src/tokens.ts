/** Nest token of the BlobStore the artifact routes use. */
export const BLOB_STORE = Symbol.for('ledgerflow.BlobStore');
