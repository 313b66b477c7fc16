import type { EventMetadata } from '@ledgerflow/contracts';

/**
 * Who is asking, carried to the service that answers: the caller's correlation id goes into the
 * gRPC metadata (`x-correlation-id`) next to the W3C trace context of the active span.
 */
export interface CallContext {
  readonly correlationId?: string;
}

/** A run as other services need it (the tracking read model's field names). */
export interface RunFacts {
  readonly run_id: string;
  readonly experiment_id: string;
  readonly artifact_uri: string;
  readonly lifecycle_stage: string;
  readonly status: string;
  readonly user_id: string;
}

/** A 3.x logged model as other services need it. */
export interface LoggedModelFacts {
  readonly model_id: string;
  readonly experiment_id: string;
  readonly name: string;
  readonly artifact_uri: string;
  /** Absent when the model was logged outside a run. */
  readonly source_run_id?: string;
  /** `active` or `deleted` (a deleted model still anchors permission checks to its experiment). */
  readonly lifecycle_stage: string;
}

export interface ExperimentFacts {
  readonly experiment_id: string;
  readonly name: string;
  readonly artifact_location: string;
  readonly lifecycle_stage: string;
}

/**
 * The questions other services ask the tracking service. Embedded mode answers them in process
 * from the tracking read models; distributed mode asks tracking-ingest over gRPC
 * (`ledgerflow.tracking.v1.TrackingLookupService`). Unknown ids resolve to undefined.
 */
export interface TrackingLookup {
  run(runId: string, call?: CallContext): Promise<RunFacts | undefined>;
  loggedModel(modelId: string, call?: CallContext): Promise<LoggedModelFacts | undefined>;
  experiment(experimentId: string, call?: CallContext): Promise<ExperimentFacts | undefined>;
  experimentByName(name: string, call?: CallContext): Promise<ExperimentFacts | undefined>;
  /**
   * Lists a registered model version in the logged model's `mlflow.modelVersions` tag. Idempotent.
   * In process (one shared log) the registry does this in the same atomic append as the version
   * instead, see `sharesLog`.
   */
  linkModelVersion(
    modelId: string,
    version: { readonly name: string; readonly version: string },
    metadata: EventMetadata,
  ): Promise<void>;
  /**
   * True when the tracking streams are in the caller's own event log (embedded mode), so a caller
   * may append to them atomically with its own events; false across services.
   */
  readonly sharesLog: boolean;
}

/** The questions other services ask the registry (served by registry-governance). */
export interface RegistryLookup {
  /** A version's download location (storage location, else source); undefined when absent or deleted. */
  modelVersionLocation(
    name: string,
    version: number,
    call?: CallContext,
  ): Promise<string | undefined>;
}

/** Nest injection tokens of the ports. */
export const TRACKING_LOOKUP = Symbol.for('ledgerflow.TrackingLookup');
export const REGISTRY_LOOKUP = Symbol.for('ledgerflow.RegistryLookup');

/** The caller of a request, as the identity module authenticated it. */
export interface IdentityPrincipal {
  readonly username: string;
  readonly isAdmin: boolean;
}

/**
 * An authentication's outcome: the principal, or the HTTP status to answer (401 bad credentials,
 * 429 locked out after too many failures, 503 identity unreachable: fail closed, retry later).
 */
export type IdentityAuthResult =
  | { readonly ok: true; readonly principal: IdentityPrincipal }
  | { readonly ok: false; readonly status: 401 | 429 | 503; readonly retryAfterSeconds?: number };

/** A resource type permissions hang on. */
export type GrantResourceType = 'experiment' | 'registered_model';

/** Every grant naming a user on one resource type, and the default of a resource without one. */
export interface UserGrants {
  readonly own: readonly { readonly resourceId: string; readonly permission: string }[];
  readonly viaGroups: readonly { readonly resourceId: string; readonly permission: string }[];
  readonly defaultPermission: string;
}

/**
 * What access checks ask of the identity module (users, tokens, groups, grants). Served in process
 * by the identity module; in distributed mode the other services ask registry-governance over gRPC
 * (`ledgerflow.identity.v1.IdentityAccessService`), through a short cache of successes.
 */
export interface IdentityAccess {
  /** Checks an `Authorization` value (Basic or Bearer); `client` keys the failed-login limits. */
  authenticate(
    authorization: string | undefined,
    client: string,
    call?: CallContext,
  ): Promise<IdentityAuthResult>;
  /**
   * A user's effective permission on a resource (READ, USE, EDIT, MANAGE or NO_PERMISSIONS).
   * `fresh`: skip any cache (a denial is always re-checked, so a new grant works at once).
   */
  permissionOf(
    username: string,
    resourceType: GrantResourceType,
    resourceId: string,
    options?: { readonly fresh?: boolean; readonly call?: CallContext },
  ): Promise<string>;
  /** The grants a search needs to filter to what the user may read. */
  userGrants(
    username: string,
    resourceType: GrantResourceType,
    call?: CallContext,
  ): Promise<UserGrants>;
  /** The creator's grant on what they created (LEDGERFLOW_AUTH_CREATOR_PERMISSION). */
  grantCreator(
    username: string,
    resourceType: GrantResourceType,
    resourceId: string,
    metadata: EventMetadata,
  ): Promise<void>;
  /** Moves the grants of a renamed resource to its new name. */
  moveGrants(
    resourceType: GrantResourceType,
    from: string,
    to: string,
    metadata: EventMetadata,
  ): Promise<void>;
}

export const IDENTITY_ACCESS = Symbol.for('ledgerflow.IdentityAccess');
