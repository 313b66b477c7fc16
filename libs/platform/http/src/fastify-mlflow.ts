import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { invalidParameter } from '@ledgerflow/contracts';

/** Largest JSON body accepted (a dataset profile may be 16 MB). */
export const MAX_JSON_BODY_BYTES = 64 * 1024 * 1024;

/** Paths whose POST/PUT bodies are raw bytes, not JSON (artifact uploads). */
const RAW_BODY_PATHS = [
  /^\/api\/2\.0\/mlflow-artifacts\/artifacts\//,
  /^\/ajax-api\/2\.0\/mlflow\/upload-artifact/,
];

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
  fastify.addContentTypeParser(
    'application/json',
    { parseAs: 'string', bodyLimit: MAX_JSON_BODY_BYTES },
    (
      _req: FastifyRequest,
      body: string | Buffer,
      done: (err: Error | null, value?: unknown) => void,
    ) => {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      if (text.trim() === '') return done(null, {});
      try {
        let parsed: unknown = JSON.parse(text);
        if (typeof parsed === 'string') parsed = JSON.parse(parsed);
        done(null, parsed ?? {});
      } catch (e) {
        done(invalidParameter(`Malformed JSON request body: ${(e as Error).message}`));
      }
    },
  );
  // Other content types are collected raw so the route (or the check below) can answer them.
  fastify.addContentTypeParser(
    '*',
    { parseAs: 'buffer', bodyLimit: MAX_JSON_BODY_BYTES },
    (_req, body, done) => {
      done(null, body);
    },
  );

  fastify.addHook('onRequest', (request, reply, done) => {
    void reply.header('x-content-type-options', 'nosniff').header('x-frame-options', 'SAMEORIGIN');
    const path = request.url.split('?', 1)[0] ?? '';
    if (
      (request.method === 'POST' || request.method === 'PUT') &&
      isJsonApi(path) &&
      !RAW_BODY_PATHS.some((p) => p.test(path))
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
