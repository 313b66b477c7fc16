import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { invalidParameter } from '@ledgerflow/contracts';

/** Largest JSON body accepted (a dataset profile may be 16 MB). */
export const MAX_JSON_BODY_BYTES = 64 * 1024 * 1024;

/** Paths whose POST/PUT bodies are raw bytes, not JSON (artifact uploads). */
const RAW_BODY_PATHS = [
  /^\/api\/2\.0\/mlflow-artifacts\/artifacts\//,
  /^\/ajax-api\/2\.0\/mlflow\/upload-artifact/,
];

/** Whether a request URL is an artifact upload, whose body is streamed to the route. */
export function isRawBodyPath(url: string): boolean {
  const path = url.split('?', 1)[0] ?? '';
  return RAW_BODY_PATHS.some((p) => p.test(path));
}

/** A status-carrying error Fastify answers as is (413 for a body over the limit). */
function bodyError(statusCode: number, message: string): Error {
  return Object.assign(new Error(message), { statusCode });
}

/** Reads a whole (JSON-sized) body, at most `limit` bytes, checking Content-Length. */
function collectBody(req: FastifyRequest, payload: Readable, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  const expected = declared === undefined ? undefined : Number(declared);
  if (expected !== undefined && expected > limit)
    return Promise.reject(bodyError(413, 'Request body is too large'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    payload.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        payload.removeAllListeners('data');
        payload.resume();
        reject(bodyError(413, 'Request body is too large'));
      } else chunks.push(chunk);
    });
    payload.once('error', reject);
    payload.once('end', () => {
      if (expected !== undefined && expected !== size)
        reject(bodyError(400, 'Request body size did not match Content-Length'));
      else resolve(Buffer.concat(chunks));
    });
  });
}

function isJsonApi(url: string): boolean {
  return url.startsWith('/api/') || url.startsWith('/ajax-api/');
}

function sendError(reply: FastifyReply, status: number, code: string, message: string): void {
  void reply
    .code(status)
    .header('content-type', 'application/json')
    .send(JSON.stringify({ error_code: code, message }));
}

/**
 * MLflow's wire rules that sit below routing: POST and PUT to JSON endpoints need
 * Content-Type application/json (which also blocks cross-site "simple" requests, CVE-2023-43472);
 * a body that is a JSON string holding JSON is decoded twice; an empty body counts as {}; malformed
 * JSON is the caller's mistake (400). Every response says nosniff and SAMEORIGIN.
 */
export function installMlflowWireRules(fastify: FastifyInstance): void {
  fastify.removeContentTypeParser(['application/json', 'text/plain']);
  // Artifact uploads are handed to the route as the request stream, whatever their content type
  // (a .json artifact arrives as application/json): never collected into memory.
  const rawOr =
    (parse: (body: Buffer) => unknown) =>
    (req: FastifyRequest, payload: Readable, done: (err: Error | null, body?: unknown) => void) => {
      if (isRawBodyPath(req.url)) return done(null, payload);
      collectBody(req, payload, MAX_JSON_BODY_BYTES).then(
        (body) => {
          let parsed: unknown;
          try {
            parsed = parse(body);
          } catch (e) {
            return done(e as Error);
          }
          done(null, parsed);
        },
        (e: unknown) => done(e as Error),
      );
    };
  fastify.addContentTypeParser(
    'application/json',
    rawOr((body) => {
      const text = body.toString('utf8');
      if (text.trim() === '') return {};
      try {
        let parsed: unknown = JSON.parse(text);
        if (typeof parsed === 'string') parsed = JSON.parse(parsed);
        return parsed ?? {};
      } catch (e) {
        throw invalidParameter(`Malformed JSON request body: ${(e as Error).message}`);
      }
    }),
  );
  // Other content types are collected raw so the route (or the check below) can answer them.
  fastify.addContentTypeParser(
    '*',
    rawOr((body) => body),
  );

  fastify.addHook('onRequest', (request, reply, done) => {
    void reply.header('x-content-type-options', 'nosniff').header('x-frame-options', 'SAMEORIGIN');
    const path = request.url.split('?', 1)[0] ?? '';
    if (
      (request.method === 'POST' || request.method === 'PUT') &&
      isJsonApi(path) &&
      !isRawBodyPath(path)
    ) {
      const type = (request.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
      if (type !== 'application/json') {
        sendError(
          reply,
          400,
          'INVALID_PARAMETER_VALUE',
          `Bad Request. Content-Type must be one of ['application/json'], got '${type || 'none'}'.`,
        );
        return;
      }
    }
    done();
  });
}
