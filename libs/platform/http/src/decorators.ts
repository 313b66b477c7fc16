import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { invalidParameter } from '@ledgerflow/contracts';
import { RequestMessage } from './request-message.js';
import type { ReadScope } from './access-control.js';
import { requestContextFrom, type RequestContext } from './request-context.js';

type WithContext = FastifyRequest & {
  ledgerflowContext?: RequestContext;
  ledgerflowPrincipal?: string;
  ledgerflowReadScope?: ReadScope;
};

/** The MLflow request message: the query string for GET, the JSON body otherwise. */
export const Msg = createParamDecorator((_data: unknown, ctx: ExecutionContext): RequestMessage => {
  const req = ctx.switchToHttp().getRequest<FastifyRequest>();
  if (req.method === 'GET')
    return new RequestMessage((req.query ?? {}) as Record<string, unknown>, true);
  const body: unknown = req.body ?? {};
  if (typeof body !== 'object' || body === null || Array.isArray(body) || Buffer.isBuffer(body)) {
    throw invalidParameter('Request body must be a JSON object.');
  }
  return new RequestMessage(body as Record<string, unknown>, false);
});

/** Who is calling, for event metadata. */
export const Ctx = createParamDecorator((_data: unknown, ctx: ExecutionContext): RequestContext => {
  const req = ctx.switchToHttp().getRequest<WithContext>();
  req.ledgerflowContext ??= requestContextFrom(
    req.headers,
    req.ledgerflowPrincipal,
    req.ledgerflowReadScope,
  );
  return req.ledgerflowContext;
});
