import { Module, type DynamicModule } from '@nestjs/common';
import type { LedgerflowConfig } from '@ledgerflow/config';
import { PlatformModule, type EmbeddedPlatform } from '@ledgerflow/runtime';
import { ArtifactsModule } from '@ledgerflow/service-artifacts';
import { DeploymentModule } from '@ledgerflow/service-deployment';
import { RegistryModule } from '@ledgerflow/service-registry';
import { TrackingModule } from '@ledgerflow/service-tracking';

/** Embedded mode: every service's module in one process, on one HTTP port. */
@Module({})
export class EmbeddedModule {
  static forRoot(platform: EmbeddedPlatform, config: LedgerflowConfig): DynamicModule {
    return {
      module: EmbeddedModule,
      imports: [ArtifactsModule, DeploymentModule, PlatformModule.forRoot(platform, config), RegistryModule, TrackingModule],
    };
  }
}

