import { Module } from '@nestjs/common';
import { GovernanceModule } from '../governance/governance.module.js';
import { AuditController } from './audit.controller.js';
import { AuditQueries } from './audit.queries.js';

/**
 * The audit REST API (/api/2.0/ledgerflow/audit/...) and registry governance (policies, transition
 * requests, comments), mounted wherever the registry is.
 */
@Module({
  imports: [GovernanceModule],
  controllers: [AuditController],
  providers: [AuditQueries],
  exports: [AuditQueries],
})
export class AuditModule {}
