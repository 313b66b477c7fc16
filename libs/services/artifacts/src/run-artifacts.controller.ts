import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { invalidParameter, notFound } from '@ledgerflow/contracts';
import { confineArtifactPath, joinArtifactPath, type BlobStore } from '@ledgerflow/blob-store';
import { Ctx, Msg, type RequestContext, type RequestMessage } from '@ledgerflow/http';
import {
  REGISTRY_LOOKUP,
  TRACKING_LOOKUP,
  type RegistryLookup,
  type TrackingLookup,
} from '@ledgerflow/service-calls';
import { sendArtifact } from './artifact-download.js';
import { BLOB_STORE } from './tokens.js';

/**
 * Where a proxied artifact URI's files live in the blob store, as MLflow's
 * _get_proxied_run_artifact_destination_path: `mlflow-artifacts:[//host]/<path>` or
 * `http(s)://host/.../api/2.0/mlflow-artifacts/artifacts/<path>`. Undefined for a URI this server
 * does not serve (a client-side store such as s3:// or a local folder).
 */
export function proxiedStorePath(uri: string): string | undefined {
  let rest: string | undefined;
  const scheme = /^mlflow-artifacts:(.*)$/i.exec(uri);
  if (scheme !== null) rest = scheme[1]!.replace(/^\/\/[^/]*/, '');
  else if (/^https?:/i.test(uri)) {
    const m = /\/api\/2\.0\/mlflow-artifacts\/artifacts(\/.*)?$/.exec(
      uri.split(/[?#]/, 1)[0] ?? '',
    );
    rest = m === null ? undefined : (m[1] ?? '');
  }
  if (rest === undefined) return undefined;
  // The URI's path is absolute (`mlflow-artifacts:/0/<run>/artifacts`); the store's is relative.
  return confineArtifactPath(rest.replace(/^\/+/, ''), { allowRoot: true });
}

/**
 * The tracking API's artifact routes over the same store: run-relative listing
 * (/api/2.0/mlflow/artifacts/list), the UI's /get-artifact, and /model-versions/get-artifact.
 */
@Controller()
export class RunArtifactsController {
  constructor(
    @Inject(BLOB_STORE) private readonly store: BlobStore,
    @Inject(TRACKING_LOOKUP) private readonly tracking: TrackingLookup,
    @Inject(REGISTRY_LOOKUP) private readonly registry: RegistryLookup,
  ) {}

  private async runRoot(
    msg: RequestMessage,
    ctx: RequestContext,
  ): Promise<{ uri: string; storePath: string }> {
    const runId = msg.optionalString('run_id') || msg.optionalString('run_uuid');
    if (runId === undefined || runId === '')
      throw invalidParameter(
        "Missing value for required parameter 'run_id'. See the API docs for more information about request parameters.",
      );
    const run = await this.tracking.run(runId, { correlationId: ctx.correlationId });
    if (run === undefined) throw notFound(`Run with id=${runId} not found`);
    const storePath = proxiedStorePath(run.artifact_uri);
    if (storePath === undefined)
      throw invalidParameter(
        `The artifacts of run ${runId} are at '${run.artifact_uri}', which this server does not serve`,
      );
    return { uri: run.artifact_uri, storePath };
  }

  @Get(['api/2.0/mlflow/artifacts/list', 'ajax-api/2.0/mlflow/artifacts/list'])
  async list(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const raw = msg.optionalString('path');
    const rel = raw === undefined ? '' : confineArtifactPath(raw, { allowRoot: true });
    const root = await this.runRoot(msg, ctx);
    const entries = await this.store.list(joinArtifactPath(root.storePath, rel));
    const files = entries.map((e) => {
      const path = joinArtifactPath(rel, e.name);
      return e.isDir ? { path, is_dir: true } : { path, is_dir: false, file_size: e.size };
    });
    return files.length === 0 ? { root_uri: root.uri } : { root_uri: root.uri, files };
  }

  @Get(['get-artifact', 'ajax-api/2.0/mlflow/get-artifact'])
  async getArtifact(
    @Msg() msg: RequestMessage,
    @Ctx() ctx: RequestContext,
    @Req() req: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const rel = confineArtifactPath(msg.optionalString('path') ?? '');
    const root = await this.runRoot(msg, ctx);
    await sendArtifact(this.store, joinArtifactPath(root.storePath, rel), req, reply);
  }

  /**
   * A registered model version's artifact (the UI's /model-versions/get-artifact): the version's
   * download location (storage_location, else source) from the registry read models, served like
   * /get-artifact.
   */
  @Get([
    'model-versions/get-artifact',
    'ajax-api/2.0/mlflow/model-versions/get-artifact',
    'api/2.0/mlflow/model-versions/get-artifact',
  ])
  async modelVersionArtifact(
    @Msg() msg: RequestMessage,
    @Ctx() ctx: RequestContext,
    @Req() req: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const rel = confineArtifactPath(msg.optionalString('path') ?? '');
    const name = msg.requiredString('name');
    const version = msg.requiredId('version');
    if (!/^\d+$/.test(version.trim()))
      throw invalidParameter(`Parameter 'version' must be an integer, got '${version}'.`);
    const location = await this.registry.modelVersionLocation(name, Number(version), {
      correlationId: ctx.correlationId,
    });
    if (location === undefined)
      throw notFound(`Model Version (name=${name}, version=${Number(version)}) not found`);
    const storePath = proxiedStorePath(location);
    if (storePath === undefined)
      throw invalidParameter(
        `The artifacts of model version ${name}/${Number(version)} are at '${location}', which this server does not serve`,
      );
    await sendArtifact(this.store, joinArtifactPath(storePath, rel), req, reply);
  }
}
