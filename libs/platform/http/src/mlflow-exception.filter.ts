import {
  Catch,
  HttpException,
  Logger,
  type ArgumentsHost,
  type ExceptionFilter,
} from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { MlflowError, type MlflowErrorCode } from '@ledgerflow/contracts';

function codeForStatus(status: number): MlflowErrorCode {
  if (status === 404) return 'ENDPOINT_NOT_FOUND';
  if (status === 401) return 'UNAUTHENTICATED';
  if (status === 403) return 'PERMISSION_DENIED';
  if (status === 409) return 'RESOURCE_CONFLICT';
  if (status === 413) return 'INVALID_PARAMETER_VALUE';
  if (status === 429) return 'REQUEST_LIMIT_EXCEEDED';
  if (status >= 500) return 'INTERNAL_ERROR';
  return 'BAD_REQUEST';
}

/**
 * Turns every error into MLflow's JSON error body with the status from HTTP_STATUS_OF. Errors that
 * are not MlflowErrors are our bugs: logged with their stack, answered 500 without internals.
 */
@Catch()
export class MlflowExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('http');

  catch(error: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    let status: number;
    let body: { error_code: string; message: string };
    if (error instanceof MlflowError) {
      status = error.httpStatus;
      body = error.toJSON();
    } else if (error instanceof HttpException) {
      status = error.getStatus();
      const message = status === 404 ? 'Endpoint not found' : error.message;
      body = { error_code: codeForStatus(status), message };
    } else if (isFastifyClientError(error)) {
      status = error.statusCode;
      body = { error_code: codeForStatus(status), message: error.message };
    } else {
      this.logger.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
      status = 500;
      body = { error_code: 'INTERNAL_ERROR', message: 'Internal server error' };
    }
    // a peer (another service, identity) cannot answer now: MLflow's client honours Retry-After
    if (status === 503) void reply.header('retry-after', '5');
    void reply.code(status).header('content-type', 'application/json').send(JSON.stringify(body));
  }
}

function isFastifyClientError(e: unknown): e is { statusCode: number; message: string } {
  return (
    typeof e === 'object' &&
    e !== null &&
    'statusCode' in e &&
    typeof e.statusCode === 'number' &&
    (e as { statusCode: number }).statusCode >= 400 &&
    (e as { statusCode: number }).statusCode < 500
  );
}
