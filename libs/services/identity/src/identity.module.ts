import { Global, Inject, Module, type OnApplicationBootstrap } from '@nestjs/common';
import { LEDGERFLOW_CONFIG, type LedgerflowConfig } from '@ledgerflow/config';
import { ACCESS_CONTROL } from '@ledgerflow/http';
import {
  IDENTITY_ACCESS,
  TRACKING_LOOKUP,
  type IdentityAccess,
  type TrackingLookup,
} from '@ledgerflow/service-calls';
import { AccessControlService } from './access-control.service.js';
import { LedgerflowIdentityController, MlflowAuthController } from './identity.controller.js';
import { IdentityService } from './identity.service.js';
import { LocalIdentityAccess } from './local-identity-access.js';

/**
 * Identity and permissions: users, API tokens, groups and grants, MLflow's auth endpoints, and
 * the AccessControl port the runtime's enforcement hooks (and the gRPC ingest) call.
 */
@Global()
@Module({
  controllers: [MlflowAuthController, LedgerflowIdentityController],
  providers: [
    IdentityService,
    LocalIdentityAccess,
    { provide: IDENTITY_ACCESS, useExisting: LocalIdentityAccess },
    AccessControlService,
    { provide: ACCESS_CONTROL, useExisting: AccessControlService },
  ],
  // IDENTITY_ACCESS: what registry-governance serves the other services over gRPC
  exports: [ACCESS_CONTROL, IDENTITY_ACCESS, IdentityService],
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

/**
 * Access control in a service that does not mount the identity module (distributed mode): the
 * same route rules and answers, with users, tokens and grants asked of registry-governance over
 * gRPC (IDENTITY_ACCESS, provided by the runtime). Without that client (a service run alone in
 * embedded mode) it provides nothing, so a process with auth on refuses to start.
 */
@Global()
@Module({
  providers: [
    {
      provide: ACCESS_CONTROL,
      useFactory: (
        identity: IdentityAccess | undefined,
        tracking: TrackingLookup | undefined,
        config: LedgerflowConfig,
      ) =>
        identity === undefined ? undefined : new AccessControlService(identity, tracking, config),
      inject: [
        { token: IDENTITY_ACCESS, optional: true },
        { token: TRACKING_LOOKUP, optional: true },
        LEDGERFLOW_CONFIG,
      ],
    },
  ],
  exports: [ACCESS_CONTROL],
})
export class RemoteAccessModule {}
