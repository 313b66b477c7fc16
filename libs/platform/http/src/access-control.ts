import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Duplex } from 'node:stream';
import { MlflowError } from '@ledgerflow/contracts';

/** An authenticated caller. */
export interface Principal {
  readonly username: string;
  readonly isAdmin: boolean;
}

/** What an operation needs on its resource (MLflow's auth app, fact sheet §7). */
export type AccessCapability = 'read' | 'update' | 'delete' | 'manage';

/** A resource named by a request, before it is resolved to what its permission hangs on. */
export type ResourceRef =
  | { readonly type: 'experiment'; readonly id: string }
  | { readonly type: 'run'; readonly id: string }
  | { readonly type: 'logged_model'; readonly id: string }
  | { readonly type: 'registered_model'; readonly id: string };

/** What the caller may read: used by searches to filter inside the query (paging stays right). */
export interface ReadScope {
  /** A predicate over experiment ids (runs and logged models inherit from their experiment). */
  experiments(): Promise<(experimentId: string) => boolean>;
  /** A predicate over registered model names (model versions inherit from their model). */
  registeredModels(): Promise<(name: string) => boolean>;
}

/** The parts of a request a permission rule looks at. */
export interface RouteCall {
  readonly method: string;
  /** The route pattern as registered (`/api/2.0/mlflow/logged-models/:model_id`). */
  readonly route: string;
  /** The raw URL (for the artifact proxy's path, still percent-encoded). */
  readonly url: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly query: Readonly<Record<string, unknown>>;
  readonly body: unknown;
}

export type AuthResult =
  | { readonly ok: true; readonly principal: Principal }
  | {
      readonly ok: false;
      /** 401 bad credentials, 429 locked out, 503 the identity service cannot be reached. */
      readonly status: 401 | 429 | 503;
      readonly retryAfterSeconds?: number;
    };

/**
 * The enforcement port: authentication of every request and authorization of every route by one
 * rule table. Provided by the identity service (in-process today; a gRPC client in distributed mode).
 */
export interface AccessControl {
  /** `off`: no checks at all, every caller is anonymous. */
  readonly enabled: boolean;
  /** Checks an `Authorization` header value (Basic or Bearer). `client` keys failed-login limits. */
  authenticate(authorization: string | undefined, client: string): Promise<AuthResult>;
  /** Whether the route has a rule (a route without one is refused for everyone). */
  hasRule(method: string, route: string): boolean;
  /** Whether the principal may make this call. */
  authorize(principal: Principal, call: RouteCall): Promise<boolean>;
  /** Whether the principal has the capability on a resource (gRPC and in-handler checks). */
  authorizeResource(
    principal: Principal,
    resource: ResourceRef,
    capability: AccessCapability,
  ): Promise<boolean>;
  /** What the principal may read (admins: everything). */
  readScope(principal: Principal): ReadScope;
  /** After a successful call: the creator's grant on what it created, grants following a rename. */
  afterSuccess(principal: Principal, call: RouteCall, responseBody: unknown): Promise<void>;
}

/** Nest injection token of the AccessControl port. */
export const ACCESS_CONTROL = Symbol.for('ledgerflow.AccessControl');

/** Longest Authorization header looked at; longer ones are refused without parsing. */
export const MAX_AUTHORIZATION_BYTES = 4096;

/** Paths reachable without credentials when auth is on. */
const PUBLIC_PATHS = new Set(['/health', '/ready']);

const UNAUTHENTICATED_TEXT =
  'You are not authenticated. Please see https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to authenticate.';

type AuthRequest = FastifyRequest & {
  ledgerflowPrincipal?: string;
  ledgerflowAuth?: Principal;
  ledgerflowReadScope?: ReadScope;
};

function unauthenticated(reply: FastifyReply): FastifyReply {
  return reply
    .code(401)
    .header('www-authenticate', 'Basic realm="mlflow"')
    .header('content-type', 'text/plain; charset=utf-8')
    .send(UNAUTHENTICATED_TEXT);
}

/**
 * Fastify's clientErrorHandler: what a request gets when Node's HTTP parser refuses it before any
 * hook runs. Headers over Node's limit (16 KiB) are a 431 normally; with auth on they are a 401 like
 * every other unreadable credential, so an oversized Authorization header is refused the same way
 * as a 10 KiB one. Everything else answers as Fastify's default (400, 408 for a timeout).
 */
export function clientErrorHandler(
  authOn: () => boolean,
): (err: NodeJS.ErrnoException, socket: Duplex) => void {
  return (err, socket) => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    let head: string;
    let body: string;
    let type = 'application/json';
    if (err.code === 'HPE_HEADER_OVERFLOW' && authOn()) {
      head = '401 Unauthorized\r\nWWW-Authenticate: Basic realm="mlflow"';
      body = `${UNAUTHENTICATED_TEXT} (Request headers are too large; credentials were not read.)`;
      type = 'text/plain; charset=utf-8';
    } else {
      const [code, label] =
        err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout']
          : err.code === 'HPE_HEADER_OVERFLOW'
            ? [431, 'Request Header Fields Too Large']
            : [400, 'Bad Request'];
      head = `${code} ${label}`;
      body = JSON.stringify({ error: label, message: label, statusCode: code });
    }
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${head}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
          `Content-Type: ${type}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };
}

/** Seconds a client waits when the identity service cannot be reached (Retry-After). */
const IDENTITY_RETRY_AFTER_SECONDS = 5;

/**
 * The identity service cannot be reached (distributed mode): fail closed with 503 and Retry-After,
 * MLflow-shaped, which the MLflow client retries after the given delay.
 */
function identityUnavailable(reply: FastifyReply, retryAfterSeconds: number): FastifyReply {
  return reply
    .code(503)
    .header('retry-after', String(retryAfterSeconds))
    .header('content-type', 'application/json')
    .send(
      JSON.stringify({
        error_code: 'TEMPORARILY_UNAVAILABLE',
        message:
          'Access cannot be checked right now (the identity service is unreachable); retry later.',
      }),
    );
}

/** An access check that failed because identity could not answer (not a refusal). */
function unavailableError(e: unknown): boolean {
  return (
    e instanceof MlflowError &&
    (e.code === 'TEMPORARILY_UNAVAILABLE' || e.code === 'INTERNAL_ERROR')
  );
}

function denied(reply: FastifyReply): FastifyReply {
  return reply
    .code(403)
    .header('content-type', 'text/plain; charset=utf-8')
    .send('Permission denied');
}

/** Routes registered on the app, in registration order (the permission matrix test enumerates them). */
export interface RegisteredRoute {
  readonly method: string;
  readonly url: string;
}

const ROUTES = Symbol.for('ledgerflow.routes');

/** Records every route the app registers (call before any route is added). */
export function recordRoutes(fastify: FastifyInstance): void {
  const routes: RegisteredRoute[] = [];
  (fastify as unknown as Record<symbol, unknown>)[ROUTES] = routes;
  fastify.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) routes.push({ method: String(method), url: route.url });
  });
}

/** The routes recorded by recordRoutes. */
export function registeredRoutes(fastify: FastifyInstance): readonly RegisteredRoute[] {
  return ((fastify as unknown as Record<symbol, unknown>)[ROUTES] as RegisteredRoute[]) ?? [];
}

/**
 * The one enforcement point of every HTTP route: onRequest authenticates (before any body is
 * read, so anonymous uploads are refused without streaming them), preHandler authorizes with the
 * route's rule once the JSON body is parsed. `resolve` gives the AccessControl once the app has
 * been created; until then, and when it is off, nothing is checked.
 */
export function installAccessControl(
  fastify: FastifyInstance,
  resolve: () => AccessControl | undefined,
): void {
  fastify.addHook('onRequest', async (request: AuthRequest, reply) => {
    const access = resolve();
    if (access === undefined || !access.enabled) return;
    const path = request.url.split('?', 1)[0] ?? '';
    if (PUBLIC_PATHS.has(path)) return;
    const header = request.headers.authorization;
    if (header !== undefined && header.length > MAX_AUTHORIZATION_BYTES)
      return unauthenticated(reply);
    const result = await access.authenticate(header, request.ip);
    if (!result.ok) {
      if (result.status === 503)
        return identityUnavailable(reply, result.retryAfterSeconds ?? IDENTITY_RETRY_AFTER_SECONDS);
      if (result.status === 429) {
        return reply
          .code(429)
          .header('retry-after', String(result.retryAfterSeconds ?? 60))
          .header('www-authenticate', 'Basic realm="mlflow"')
          .header('content-type', 'text/plain; charset=utf-8')
          .send('Too many failed login attempts; try again later.');
      }
      return unauthenticated(reply);
    }
    request.ledgerflowAuth = result.principal;
    request.ledgerflowPrincipal = result.principal.username;
    request.ledgerflowReadScope = access.readScope(result.principal);
  });
  fastify.addHook('preHandler', async (request: AuthRequest, reply) => {
    const access = resolve();
    if (access === undefined || !access.enabled) return;
    const principal = request.ledgerflowAuth;
    const route = request.routeOptions.url;
    if (principal === undefined || route === undefined) return; // public path, or no route (404)
    const call = routeCall(request, route);
    if (!access.hasRule(call.method, route)) {
      request.log.error(`no permission rule for ${call.method} ${route}: refused`);
      return denied(reply);
    }
    let allowed: boolean;
    try {
      allowed = await access.authorize(principal, call);
    } catch (e) {
      if (!unavailableError(e)) throw e;
      request.log.error(`access check of ${call.method} ${route} failed: ${(e as Error).message}`);
      return identityUnavailable(reply, IDENTITY_RETRY_AFTER_SECONDS);
    }
    if (!allowed) return denied(reply);
  });
  fastify.addHook('onSend', async (request: AuthRequest, reply, payload) => {
    const access = resolve();
    const principal = request.ledgerflowAuth;
    const route = request.routeOptions.url;
    if (access === undefined || !access.enabled || principal === undefined || route === undefined)
      return payload;
    if (reply.statusCode !== 200) return payload;
    try {
      await access.afterSuccess(principal, routeCall(request, route), payload);
    } catch (e) {
      request.log.error(`after ${request.method} ${route}: ${(e as Error).message}`);
    }
    return payload;
  });
}

function routeCall(request: FastifyRequest, route: string): RouteCall {
  return {
    method: request.method === 'HEAD' ? 'GET' : request.method,
    route,
    url: request.url,
    params: (request.params ?? {}) as Record<string, unknown>,
    query: (request.query ?? {}) as Record<string, unknown>,
    body: request.body,
  };
}
