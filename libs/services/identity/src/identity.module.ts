import { Global, Inject, Module, type OnApplicationBootstrap } from '@nestjs/common';
import { LEDGERFLOW_CONFIG, type LedgerflowConfig } from '@ledgerflow/config';
import { ACCESS_CONTROL } from '@ledgerflow/http';
import { AccessControlService } from './access-control.service.js';
import { LedgerflowIdentityController, MlflowAuthController } from './identity.controller.js';
import { IdentityService } from './identity.service.js';

/**
 * Identity and permissions: users, API tokens, groups and grants, MLflow's auth endpoints, and
 * the AccessControl port the runtime's enforcement hooks (and the gRPC ingest) call.
 */
@Global()
@Module({
  controllers: [MlflowAuthController, LedgerflowIdentityController],
  providers: [
    IdentityService,
    AccessControlService,
    { provide: ACCESS_CONTROL, useExisting: AccessControlService },
  ],
  exports: [ACCESS_CONTROL, IdentityService],
})
export class IdentityModule implements OnApplicationBootstrap {
  constructor(
    @Inject(IdentityService) private readonly identity: IdentityService,
    @Inject(LEDGERFLOW_CONFIG) private readonly config: LedgerflowConfig,
  ) {}

  /** With auth on, makes sure an admin exists (from env, or generated and printed once). */
  async onApplicationBootstrap(): Promise<void> {
    if (this.config.auth.mode !== 'off') await this.identity.bootstrapAdmin();
  }
}
