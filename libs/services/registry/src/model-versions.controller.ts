import { Controller, Delete, Get, HttpCode, Inject, Patch, Post } from '@nestjs/common';
import { canonicalStage, DEFAULT_MODEL_VERSIONS_PER_PAGE } from '@ledgerflow/domain-registry';
import { Ctx, metadataOf, Msg, type RequestContext, type RequestMessage } from '@ledgerflow/http';
import { TRACKING_LOOKUP, type TrackingLookup } from '@ledgerflow/service-calls';
import { GovernanceService } from './governance/governance.service.js';
import {
  isPromptVersion,
  promptSource,
  resolveModelSource,
  sourceLookups,
} from './model-source.js';
import { RegistryCommands } from './registry.commands.js';
import { modelVersionJson } from './registry.json.js';
import { RegistryQueries } from './registry.queries.js';
import {
  expectedRevisionOf,
  modelName,
  reasonOf,
  registryTag,
  registryTags,
  versionOf,
} from './registry.requests.js';

/** MLflow's model-version endpoints (fact sheet §5), under /api/2.0 and the ajax mirror. */
@Controller(['api/2.0/mlflow/model-versions', 'ajax-api/2.0/mlflow/model-versions'])
export class ModelVersionsController {
  constructor(
    @Inject(RegistryCommands) private readonly commands: RegistryCommands,
    @Inject(RegistryQueries) private readonly queries: RegistryQueries,
    @Inject(TRACKING_LOOKUP) private readonly tracking: TrackingLookup,
    @Inject(GovernanceService) private readonly governance: GovernanceService,
  ) {}

  private async versionJson(name: string, version: number): Promise<object> {
    return { model_version: modelVersionJson(await this.queries.version(name, version)) };
  }

  @Post('create')
  @HttpCode(200)
  async create(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = modelName(msg);
    const source = msg.requiredString('source');
    const tags = registryTags(msg);
    await this.commands.modelIdOf(name);
    // a prompt version (MLflow 3's prompt registry) has no artifacts: only a placeholder source
    const resolved = isPromptVersion(tags)
      ? promptSource(source, msg.optionalString('run_id') ?? '')
      : await resolveModelSource(
          {
            source,
            runId: msg.optionalString('run_id') ?? '',
            hasRunId: msg.has('run_id'),
            loggedModelId: msg.optionalString('model_id') ?? '',
            hasModelId: msg.has('model_id'),
          },
          {
            ...sourceLookups(this.tracking, { correlationId: ctx.correlationId }),
            registry: this.queries,
          },
        );
    const version = await this.commands.createModelVersion(
      name,
      {
        ...resolved,
        runLink: msg.optionalString('run_link') ?? '',
        description: msg.optionalString('description') ?? '',
        tags,
      },
      metadataOf(ctx, reasonOf(msg)),
    );
    return this.versionJson(name, version);
  }

  @Get('get')
  async get(@Msg() msg: RequestMessage): Promise<object> {
    return this.versionJson(modelName(msg), versionOf(msg));
  }

  @Patch('update')
  async update(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = modelName(msg);
    const version = versionOf(msg);
    const description = msg.optionalString('description');
    if (description !== undefined)
      await this.commands.editVersion(
        name,
        version,
        { type: 'UpdateModelVersion', description },
        metadataOf(ctx, reasonOf(msg)),
      );
    return this.versionJson(name, version);
  }

  @Delete('delete')
  async delete(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = modelName(msg);
    const version = versionOf(msg);
    // the aliases a deletion removes are governed like any alias change
    const meta = metadataOf(ctx, reasonOf(msg));
    await this.governance.authorizeVersionDelete(name, version, meta);
    await this.commands.onModel(name, { type: 'DeleteModelVersion', version }, meta);
    return {};
  }

  @Get('search')
  async search(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const filter = msg.optionalString('filter');
    const pageToken = msg.optionalString('page_token');
    const result = await this.queries.searchVersions(
      {
        maxResults: msg.optionalInt('max_results') ?? DEFAULT_MODEL_VERSIONS_PER_PAGE,
        orderBy: msg.stringList('order_by'),
        ...(filter === undefined || filter === '' ? {} : { filter }),
        ...(pageToken === undefined || pageToken === '' ? {} : { pageToken }),
      },
      await ctx.readScope?.registeredModels(),
    );
    const out: Record<string, unknown> = {};
    if (result.versions.length > 0) out['model_versions'] = result.versions.map(modelVersionJson);
    if (result.nextPageToken !== undefined) out['next_page_token'] = result.nextPageToken;
    return out;
  }

  @Post('transition-stage')
  @HttpCode(200)
  async transition(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = modelName(msg);
    const version = versionOf(msg);
    const stage = canonicalStage(msg.requiredString('stage'));
    const archiveExistingVersions = msg.optionalBool('archive_existing_versions') ?? false;
    const expectedRevision = expectedRevisionOf(msg);
    // a stage a governance policy guards is refused here (403 naming the rule)
    const meta = metadataOf(ctx, reasonOf(msg));
    await this.governance.authorizeDirect(
      name,
      { kind: 'stage', stage },
      { action: 'transition_stage', version },
      meta,
    );
    await this.commands.transitionStage(
      name,
      {
        version,
        stage,
        archiveExistingVersions,
        ...(expectedRevision === undefined ? {} : { expectedRevision }),
      },
      meta,
    );
    return this.versionJson(name, version);
  }

  @Get('get-download-uri')
  async downloadUri(@Msg() msg: RequestMessage): Promise<object> {
    return { artifact_uri: await this.queries.downloadUri(modelName(msg), versionOf(msg)) };
  }

  @Post('set-tag')
  @HttpCode(200)
  async setTag(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = modelName(msg);
    const version = versionOf(msg);
    const tag = registryTag(msg.requiredString('key'), msg.raw['value']);
    await this.commands.editVersion(
      name,
      version,
      { type: 'SetModelVersionTag', ...tag },
      metadataOf(ctx, reasonOf(msg)),
    );
    return {};
  }

  @Delete('delete-tag')
  async deleteTag(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = modelName(msg);
    const version = versionOf(msg);
    const key = msg.requiredString('key');
    await this.commands.editVersion(
      name,
      version,
      { type: 'DeleteModelVersionTag', key },
      metadataOf(ctx, reasonOf(msg)),
    );
    return {};
  }
}
