import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { blobStoreConfigFromEnv, openBlobStore, type BlobStore } from '@ledgerflow/blob-store';
import { LEDGERFLOW_CONFIG, type LedgerflowConfig } from '@ledgerflow/config';
import { ArtifactLedger } from './artifact-ledger.js';
import { ArtifactsProxyController } from './artifacts-proxy.controller.js';
import { RunArtifactsController } from './run-artifacts.controller.js';
import { BLOB_STORE } from './tokens.js';

/**
 * Artifact storage behind MLflow's artifact proxy: a local folder under the data dir, or S3
 * (LEDGERFLOW_ARTIFACT_STORE=s3, see blobStoreConfigFromEnv); every change recorded in the log.
 */
@Module({
  controllers: [ArtifactsProxyController, RunArtifactsController],
  providers: [
    ArtifactLedger,
    {
      provide: BLOB_STORE,
      inject: [LEDGERFLOW_CONFIG],
      useFactory: (config: LedgerflowConfig): BlobStore =>
        openBlobStore(blobStoreConfigFromEnv(process.env, config.dataDir)),
    },
  ],
  exports: [BLOB_STORE],
})
export class ArtifactsModule implements OnApplicationShutdown {
  constructor(@Inject(BLOB_STORE) private readonly store: BlobStore) {}

  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
  }
}
