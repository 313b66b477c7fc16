/** MLflow's error codes (databricks.proto ErrorCode names) that Ledgerflow emits. */
export type MlflowErrorCode =
  | 'INVALID_PARAMETER_VALUE'
  | 'BAD_REQUEST'
  | 'RESOURCE_ALREADY_EXISTS'
  | 'RESOURCE_DOES_NOT_EXIST'
  | 'ENDPOINT_NOT_FOUND'
  | 'NOT_FOUND'
  | 'PERMISSION_DENIED'
  | 'UNAUTHENTICATED'
  | 'RESOURCE_CONFLICT'
  | 'ABORTED'
  | 'RESOURCE_EXHAUSTED'
  | 'REQUEST_LIMIT_EXCEEDED'
  | 'NOT_IMPLEMENTED'
  | 'TEMPORARILY_UNAVAILABLE'
  | 'DEADLINE_EXCEEDED'
  | 'INVALID_STATE'
  | 'INTERNAL_ERROR';

/** HTTP status per error code, as mlflow/exceptions.py maps them. The one place this mapping lives. */
export const HTTP_STATUS_OF: Readonly<Record<MlflowErrorCode, number>> = {
  INVALID_PARAMETER_VALUE: 400,
  BAD_REQUEST: 400,
  RESOURCE_ALREADY_EXISTS: 400,
  RESOURCE_DOES_NOT_EXIST: 404,
  ENDPOINT_NOT_FOUND: 404,
  NOT_FOUND: 404,
  PERMISSION_DENIED: 403,
  UNAUTHENTICATED: 401,
  RESOURCE_CONFLICT: 409,
  ABORTED: 409,
  RESOURCE_EXHAUSTED: 429,
  REQUEST_LIMIT_EXCEEDED: 429,
  NOT_IMPLEMENTED: 501,
  TEMPORARILY_UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
  INVALID_STATE: 500,
  INTERNAL_ERROR: 500,
};

/** gRPC status code per error code, for the gRPC transports. */
export const GRPC_STATUS_OF: Readonly<Record<MlflowErrorCode, number>> = {
  INVALID_PARAMETER_VALUE: 3,
  BAD_REQUEST: 3,
  RESOURCE_ALREADY_EXISTS: 6,
  RESOURCE_DOES_NOT_EXIST: 5,
  ENDPOINT_NOT_FOUND: 12,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  UNAUTHENTICATED: 16,
  RESOURCE_CONFLICT: 10,
  ABORTED: 10,
  RESOURCE_EXHAUSTED: 8,
  REQUEST_LIMIT_EXCEEDED: 8,
  NOT_IMPLEMENTED: 12,
  TEMPORARILY_UNAVAILABLE: 14,
  DEADLINE_EXCEEDED: 4,
  INVALID_STATE: 9,
  INTERNAL_ERROR: 13,
};

/** A broken rule, as a value: carries the MLflow error code the client expects. */
export class MlflowError extends Error {
  override readonly name = 'MlflowError';
  constructor(
    readonly code: MlflowErrorCode,
    message: string,
    /** Overrides the table's status: MLflow answers some caller mistakes with 5xx codes, which its client retries for minutes. */
    private readonly status?: number,
  ) {
    super(message);
  }

  get httpStatus(): number {
    return this.status ?? HTTP_STATUS_OF[this.code];
  }

  /** MLflow's JSON error body. */
  toJSON(): { error_code: MlflowErrorCode; message: string } {
    return { error_code: this.code, message: this.message };
  }
}

/** 400 INVALID_PARAMETER_VALUE. */
export function invalidParameter(message: string): MlflowError {
  return new MlflowError('INVALID_PARAMETER_VALUE', message);
}

/** 404 RESOURCE_DOES_NOT_EXIST. */
export function notFound(message: string): MlflowError {
  return new MlflowError('RESOURCE_DOES_NOT_EXIST', message);
}
