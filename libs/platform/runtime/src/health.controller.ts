import { Controller, Get, Header } from '@nestjs/common';
import { LEDGERFLOW_VERSION } from './version.js';

/** Liveness and version, as MLflow serves them (plain text). */
@Controller()
export class HealthController {
  @Get('health')
  @Header('content-type', 'text/plain; charset=utf-8')
  health(): string {
    return 'OK';
  }

  @Get('version')
  @Header('content-type', 'text/plain; charset=utf-8')
  version(): string {
    return LEDGERFLOW_VERSION;
  }
}
