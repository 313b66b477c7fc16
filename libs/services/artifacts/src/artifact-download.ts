import type { FastifyReply, FastifyRequest } from 'fastify';
import { BlobNotFoundError, splitArtifactPath, type BlobStore } from '@ledgerflow/blob-store';
import { contentDispositionAttachment, guessMimeType, parseRange } from './artifact-http.js';

/**
 * Streams one stored file as an attachment (never rendered by a browser on our origin), with
 * Content-Type guessed from its name, nosniff, and single-range support (206/416).
 */
export async function sendArtifact(
  store: BlobStore,
  path: string,
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  const st = await store.stat(path);
  if (st === undefined || st.isDir) throw new BlobNotFoundError(path);
  const { name } = splitArtifactPath(path);
  void reply
    .header('content-type', guessMimeType(name))
    .header('content-disposition', contentDispositionAttachment(name))
    .header('x-content-type-options', 'nosniff')
    .header('accept-ranges', 'bytes')
    .header('cache-control', 'no-cache');
  const range = parseRange(req.headers.range, st.size);
  if (range === 'unsatisfiable') {
    await reply.code(416).header('content-range', `bytes */${st.size}`).send();
    return;
  }
  if (range === undefined) {
    const body = await store.get(path);
    await reply.code(200).header('content-length', st.size).send(body);
    return;
  }
  const body = await store.get(path, range);
  await reply
    .code(206)
    .header('content-range', `bytes ${range.start}-${range.end}/${st.size}`)
    .header('content-length', range.end - range.start + 1)
    .send(body);
}
