import * as grpc from '@grpc/grpc-js';
import {
  identityAccessV1 as v1,
  invalidParameter,
  type EventMetadata,
} from '@ledgerflow/contracts';
import { callUnary, unaryHandler, type GrpcServiceBinding } from './grpc-call.js';
import type {
  CallContext,
  GrantResourceType,
  IdentityAccess,
  IdentityAuthResult,
  UserGrants,
} from './ports.js';
import { serviceCallOptions } from './service-token.js';

const SERVICE = 'ledgerflow.identity.v1.IdentityAccessService';

/** Deadline of one identity call: a request waits at most this long before its 503. */
export const IDENTITY_CALL_DEADLINE_MS = 5000;
/** Longest wait between reconnection attempts to an unreachable identity service. */
export const RECONNECT_BACKOFF_MAX_MS = 2000;

function resourceType(raw: string): GrantResourceType {
  if (raw === 'experiment' || raw === 'registered_model') return raw;
  throw invalidParameter(`Unknown resource type '${raw.slice(0, 40)}'`);
}

/**
 * IdentityAccess over gRPC: how tracking-ingest, artifact-store and deployment ask
 * registry-governance (which mounts the identity module) in distributed mode.
 */
export class GrpcIdentityAccess implements IdentityAccess {
  private readonly client: v1.IdentityAccessServiceClient;

  constructor(
    /** `host:port` of registry-governance's service listener. */
    address: string,
    private readonly deadlineMs = IDENTITY_CALL_DEADLINE_MS,
    /** LEDGERFLOW_SERVICE_TOKEN, sent with every call. */
    serviceToken?: string,
  ) {
    this.client = new v1.IdentityAccessServiceClient(address, grpc.credentials.createInsecure(), {
      ...serviceCallOptions(serviceToken),
      // every request waits on identity: after an outage, reconnect within seconds, not grpc-js's
      // default back-off of up to two minutes
      'grpc.initial_reconnect_backoff_ms': 500,
      'grpc.max_reconnect_backoff_ms': RECONNECT_BACKOFF_MAX_MS,
    });
  }

  async authenticate(
    authorization: string | undefined,
    client: string,
    call?: CallContext,
  ): Promise<IdentityAuthResult> {
    const res = await callUnary(
      SERVICE,
      'Authenticate',
      this.client.authenticate.bind(this.client),
      { authorization: authorization ?? '', client },
      call,
      this.deadlineMs,
    );
    switch (res.outcome) {
      case v1.AuthOutcome.AUTH_OUTCOME_OK:
        return { ok: true, principal: { username: res.username, isAdmin: res.isAdmin } };
      case v1.AuthOutcome.AUTH_OUTCOME_LOCKED_OUT:
        return { ok: false, status: 429, retryAfterSeconds: Math.max(1, res.retryAfterSeconds) };
      default:
        return { ok: false, status: 401 };
    }
  }

  async permissionOf(
    username: string,
    type: GrantResourceType,
    resourceId: string,
    options?: { readonly fresh?: boolean; readonly call?: CallContext },
  ): Promise<string> {
    const res = await callUnary(
      SERVICE,
      'GetPermission',
      this.client.getPermission.bind(this.client),
      { username, resourceType: type, resourceId },
      options?.call,
      this.deadlineMs,
    );
    return res.permission;
  }

  async userGrants(
    username: string,
    type: GrantResourceType,
    call?: CallContext,
  ): Promise<UserGrants> {
    const res = await callUnary(
      SERVICE,
      'GetUserGrants',
      this.client.getUserGrants.bind(this.client),
      { username, resourceType: type },
      call,
      this.deadlineMs,
    );
    return {
      own: res.own.map((g) => ({ resourceId: g.resourceId, permission: g.permission })),
      viaGroups: res.viaGroups.map((g) => ({ resourceId: g.resourceId, permission: g.permission })),
      defaultPermission: res.defaultPermission,
    };
  }

  async grantCreator(
    username: string,
    type: GrantResourceType,
    resourceId: string,
    metadata: EventMetadata,
  ): Promise<void> {
    await callUnary(
      SERVICE,
      'GrantCreator',
      this.client.grantCreator.bind(this.client),
      { username, resourceType: type, resourceId },
      { correlationId: metadata.correlationId },
      this.deadlineMs,
    );
  }

  async moveGrants(
    type: GrantResourceType,
    from: string,
    to: string,
    metadata: EventMetadata,
  ): Promise<void> {
    await callUnary(
      SERVICE,
      'MoveGrants',
      this.client.moveGrants.bind(this.client),
      { resourceType: type, fromId: from, toId: to, actor: metadata.actor },
      { correlationId: metadata.correlationId },
      this.deadlineMs,
    );
  }

  close(): void {
    this.client.close();
  }
}

const ACTOR = /^[\w.@-]{1,256}$/;

/** Serves the identity module's IdentityAccess (registry-governance's) to the other services. */
export function identityAccessBinding(
  access: IdentityAccess,
  log: (message: string) => void,
): GrpcServiceBinding {
  const h = <Req, Res>(method: string, fn: (req: Req, call: CallContext) => Promise<Res>) =>
    unaryHandler(SERVICE, method, fn, log);
  const meta = (call: CallContext, actor: string): EventMetadata => ({
    actor: ACTOR.test(actor) ? actor : 'system',
    correlationId: call.correlationId ?? `grpc-${Date.now()}`,
    causationId: null,
  });
  const implementation: v1.IdentityAccessServiceServer = {
    authenticate: h(
      'Authenticate',
      async (req: v1.AuthenticateRequest, call): Promise<v1.AuthenticateResponse> => {
        const result = await access.authenticate(
          req.authorization === '' ? undefined : req.authorization,
          req.client.slice(0, 128),
          call,
        );
        if (result.ok)
          return {
            outcome: v1.AuthOutcome.AUTH_OUTCOME_OK,
            username: result.principal.username,
            isAdmin: result.principal.isAdmin,
            retryAfterSeconds: 0,
          };
        if (result.status === 429)
          return {
            outcome: v1.AuthOutcome.AUTH_OUTCOME_LOCKED_OUT,
            username: '',
            isAdmin: false,
            retryAfterSeconds: result.retryAfterSeconds ?? 60,
          };
        return {
          outcome: v1.AuthOutcome.AUTH_OUTCOME_UNAUTHENTICATED,
          username: '',
          isAdmin: false,
          retryAfterSeconds: 0,
        };
      },
    ),
    getPermission: h(
      'GetPermission',
      async (req: v1.GetPermissionRequest, call): Promise<v1.GetPermissionResponse> => ({
        permission: await access.permissionOf(
          req.username,
          resourceType(req.resourceType),
          req.resourceId,
          { fresh: true, call },
        ),
      }),
    ),
    getUserGrants: h(
      'GetUserGrants',
      async (req: v1.GetUserGrantsRequest, call): Promise<v1.GetUserGrantsResponse> => {
        const g = await access.userGrants(req.username, resourceType(req.resourceType), call);
        return {
          own: g.own.map((x) => ({ resourceId: x.resourceId, permission: x.permission })),
          viaGroups: g.viaGroups.map((x) => ({
            resourceId: x.resourceId,
            permission: x.permission,
          })),
          defaultPermission: g.defaultPermission,
        };
      },
    ),
    grantCreator: h(
      'GrantCreator',
      async (req: v1.GrantCreatorRequest, call): Promise<v1.GrantCreatorResponse> => {
        await access.grantCreator(
          req.username,
          resourceType(req.resourceType),
          req.resourceId,
          meta(call, req.username),
        );
        return {};
      },
    ),
    moveGrants: h(
      'MoveGrants',
      async (req: v1.MoveGrantsRequest, call): Promise<v1.MoveGrantsResponse> => {
        await access.moveGrants(
          resourceType(req.resourceType),
          req.fromId,
          req.toId,
          meta(call, req.actor),
        );
        return {};
      },
    ),
  };
  return { name: SERVICE, definition: v1.IdentityAccessServiceService, implementation };
}
