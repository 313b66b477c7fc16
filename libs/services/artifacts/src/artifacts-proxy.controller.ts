import { Controller, Delete, Get, Inject, Post, Put, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { MlflowError, invalidParameter } from '@ledgerflow/contracts';
import {
  confineArtifactPath,
  joinArtifactPath,
  splitArtifactPath,
  type BlobStore,
  type UploadedPart,
} from '@ledgerflow/blob-store';
import { Ctx, metadataOf, Msg, type RequestContext, type RequestMessage } from '@ledgerflow/http';
import { ArtifactLedger } from './artifact-ledger.js';
import { PathLocks } from './path-locks.js';
import { sendArtifact } from './artifact-download.js';
import { BLOB_STORE } from './tokens.js';

const ROUTE =
  /^\/(?:ajax-)?api\/2\.0\/mlflow-artifacts\/(?:artifacts|mpu\/create|mpu\/complete|mpu\/abort)\/(.*)$/;
/** How long a presigned part URL stays valid. */
const PART_URL_EXPIRY_SECONDS = 3600;
const MULTIPART_UNSUPPORTED =
  'Multipart upload is not supported for the current artifact repository';

/**
 * The artifact path of a proxy request, taken from the raw (still percent-encoded) URL so the
 * one confinement function sees exactly what the client sent.
 */
export function rawArtifactPath(url: string): string {
  const m = ROUTE.exec(url.split('?', 1)[0] ?? '');
  return m?.[1] ?? '';
}

function requestStream(req: FastifyRequest): Readable {
  const body: unknown = req.body;
  if (body instanceof Readable) return body;
  if (Buffer.isBuffer(body)) return Readable.from([body]);
  return Readable.from([]);
}

/** MLflow's artifact proxy (MlflowArtifactsService): upload, download, list, delete, multipart. */
@Controller(['api/2.0/mlflow-artifacts', 'ajax-api/2.0/mlflow-artifacts'])
export class ArtifactsProxyController {
  private readonly locks = new PathLocks();

  constructor(
    @Inject(BLOB_STORE) private readonly store: BlobStore,
    @Inject(ArtifactLedger) private readonly ledger: ArtifactLedger,
  ) {}

  @Put('artifacts/*')
  async upload(@Req() req: FastifyRequest, @Ctx() ctx: RequestContext): Promise<object> {
    const path = confineArtifactPath(rawArtifactPath(req.url));
    // a second upload of the same path waits, unread, until the first is stored and recorded
    await this.locks.run(path, async () => {
      const before = await this.store.stat(path);
      const stored = await this.store.put(path, requestStream(req));
      await this.ledger.stored(stored, before !== undefined && !before.isDir, metadataOf(ctx));
    });
    return {};
  }

  @Get('artifacts/*')
  async download(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const path = confineArtifactPath(rawArtifactPath(req.url));
    await sendArtifact(this.store, path, req, reply);
  }

  @Get('artifacts')
  async list(@Msg() msg: RequestMessage): Promise<object> {
    const raw = msg.optionalString('path');
    const path = raw === undefined ? '' : confineArtifactPath(raw, { allowRoot: true });
    const files = (await this.store.list(path)).map((e) =>
      e.isDir ? { path: e.name, is_dir: true } : { path: e.name, is_dir: false, file_size: e.size },
    );
    return files.length === 0 ? {} : { files };
  }

  @Delete('artifacts/*')
  async delete(@Req() req: FastifyRequest, @Ctx() ctx: RequestContext): Promise<object> {
    const path = confineArtifactPath(rawArtifactPath(req.url));
    await this.locks.run(path, async () => {
      const before = await this.store.stat(path);
      await this.store.delete(path);
      if (before !== undefined) await this.ledger.deleted(path, before.isDir, metadataOf(ctx));
    });
    return {};
  }

  @Post('mpu/create/*')
  async createMultipart(@Req() req: FastifyRequest, @Msg() msg: RequestMessage): Promise<object> {
    const target = await this.multipartTarget(req, msg);
    const numParts = msg.optionalInt('num_parts') ?? 0;
    if (numParts < 0 || numParts > 10_000)
      throw invalidParameter(`num_parts must be between 0 and 10000, got ${numParts}`);
    const mp = this.multipartOrFail();
    const uploadId = await mp.create(target);
    const credentials = [];
    for (let part = 1; part <= numParts; part++) {
      const url = await mp.partUploadUrl(target, uploadId, part, PART_URL_EXPIRY_SECONDS);
      credentials.push({ url, part_number: part, headers: {} });
    }
    return { upload_id: uploadId, credentials };
  }

  @Post('mpu/complete/*')
  async completeMultipart(
    @Req() req: FastifyRequest,
    @Msg() msg: RequestMessage,
    @Ctx() ctx: RequestContext,
  ): Promise<object> {
    const target = await this.multipartTarget(req, msg);
    const uploadId = msg.requiredString('upload_id');
    const parts: UploadedPart[] = msg.objectList('parts').map((p) => {
      const partNumber = p['part_number'];
      const etag = p['etag'];
      if (typeof partNumber !== 'number' && typeof partNumber !== 'string')
        throw invalidParameter("Missing value for required parameter 'parts.part_number'.");
      if (typeof etag !== 'string' || etag === '')
        throw invalidParameter("Missing value for required parameter 'parts.etag'.");
      const n = Number(partNumber);
      if (!Number.isInteger(n) || n < 1 || n > 10_000)
        throw invalidParameter(`Invalid part_number ${String(partNumber)}`);
      return { partNumber: n, etag };
    });
    const mp = this.multipartOrFail();
    await this.locks.run(target, async () => {
      const before = await this.store.stat(target);
      const stored = await mp.complete(target, uploadId, parts);
      await this.ledger.stored(stored, before !== undefined && !before.isDir, metadataOf(ctx));
    });
    return {};
  }

  @Post('mpu/abort/*')
  async abortMultipart(@Req() req: FastifyRequest, @Msg() msg: RequestMessage): Promise<object> {
    const target = await this.multipartTarget(req, msg);
    const uploadId = msg.requiredString('upload_id');
    await this.multipartOrFail().abort(target, uploadId);
    return {};
  }

  /**
   * The object a multipart upload writes: the URL names the folder (artifact_path) and the body's
   * `path` the client's local file, whose base name is used, as MLflow's S3 repository does.
   */
  private async multipartTarget(req: FastifyRequest, msg: RequestMessage): Promise<string> {
    const dir = confineArtifactPath(rawArtifactPath(req.url), { allowRoot: true });
    const local = msg.requiredString('path');
    const base = local.split(/[/\\]/).pop() ?? '';
    const target = joinArtifactPath(dir, splitArtifactPath(confineArtifactPath(base)).name);
    // The adapter's own checks (a link planted in a local root) apply before any answer.
    await this.store.stat(target);
    return target;
  }

  private multipartOrFail(): NonNullable<BlobStore['multipart']> {
    if (this.store.multipart === undefined)
      throw new MlflowError('NOT_IMPLEMENTED', MULTIPART_UNSUPPORTED);
    return this.store.multipart;
  }
}
