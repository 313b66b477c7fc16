import { Module } from '@nestjs/common';
import { AuditController } from './audit.controller.js';

/** The audit REST API (/api/2.0/ledgerflow/audit/...). */
@Module({
  controllers: [AuditController],
})
export class AuditModule {}
