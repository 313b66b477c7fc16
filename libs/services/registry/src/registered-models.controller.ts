import { Controller, Delete, Get, HttpCode, Inject, Patch, Post } from '@nestjs/common';
import {
  canonicalStage,
  DEFAULT_REGISTERED_MODELS_PER_PAGE,
  validateAliasName,
} from '@ledgerflow/domain-registry';
import { Ctx, metadataOf, Msg, type RequestContext, type RequestMessage } from '@ledgerflow/http';
import { GovernanceService } from './governance/governance.service.js';
import { RegistryCommands } from './registry.commands.js';
import { modelVersionJson, registeredModelJson } from './registry.json.js';
import { RegistryQueries } from './registry.queries.js';
import {
  expectedRevisionOf,
  modelName,
  reasonOf,
  registryTag,
  registryTags,
  versionOf,
} from './registry.requests.js';

/** MLflow's registered-model endpoints (fact sheet §5), under /api/2.0 and the ajax mirror. */
@Controller(['api/2.0/mlflow/registered-models', 'ajax-api/2.0/mlflow/registered-models'])
export class RegisteredModelsController {
  constructor(
    @Inject(RegistryCommands) private readonly commands: RegistryCommands,
    @Inject(RegistryQueries) private readonly queries: RegistryQueries,
    @Inject(GovernanceService) private readonly governance: GovernanceService,
  ) {}

  private async modelJson(name: string): Promise<object> {
    const { model, latest } = await this.queries.modelWithLatest(name);
    return { registered_model: registeredModelJson(model, latest) };
  }

  @Post('create')
  @HttpCode(200)
  async create(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = modelName(msg);
    await this.commands.createRegisteredModel(
      { name, description: msg.optionalString('description') ?? '', tags: registryTags(msg) },
      metadataOf(ctx, reasonOf(msg)),
    );
    return this.modelJson(name);
  }

  @Get('get')
  async get(@Msg() msg: RequestMessage): Promise<object> {
    return this.modelJson(modelName(msg));
  }

  @Post('rename')
  @HttpCode(200)
  async rename(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = modelName(msg);
    const newName = modelName(msg, 'new_name');
    await this.commands.renameRegisteredModel(name, newName, metadataOf(ctx, reasonOf(msg)));
    return this.modelJson(newName);
  }

  @Patch('update')
  async update(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = modelName(msg);
    const description = msg.optionalString('description');
    if (description !== undefined)
      await this.commands.onModel(
        name,
        { type: 'UpdateRegisteredModel', description },
        metadataOf(ctx, reasonOf(msg)),
      );
    return this.modelJson(name);
  }

  @Delete('delete')
  async delete(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = modelName(msg);
    // the aliases a deletion drops are governed like any alias change
    const meta = metadataOf(ctx, reasonOf(msg));
    await this.governance.authorizeModelDelete(name, meta);
    await this.commands.deleteRegisteredModel(name, meta);
    return {};
  }

  @Get('search')
  async search(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const filter = msg.optionalString('filter');
    const pageToken = msg.optionalString('page_token');
    const result = await this.queries.searchModels(
      {
        maxResults: msg.optionalInt('max_results') ?? DEFAULT_REGISTERED_MODELS_PER_PAGE,
        orderBy: msg.stringList('order_by'),
        ...(filter === undefined || filter === '' ? {} : { filter }),
        ...(pageToken === undefined || pageToken === '' ? {} : { pageToken }),
      },
      await ctx.readScope?.registeredModels(),
    );
    const out: Record<string, unknown> = {};
    if (result.models.length > 0)
      out['registered_models'] = result.models.map((m) => registeredModelJson(m.model, m.latest));
    if (result.nextPageToken !== undefined) out['next_page_token'] = result.nextPageToken;
    return out;
  }

  @Post('get-latest-versions')
  @HttpCode(200)
  async latestVersionsPost(@Msg() msg: RequestMessage): Promise<object> {
    return this.latestVersions(msg);
  }

  @Get('get-latest-versions')
  async latestVersions(@Msg() msg: RequestMessage): Promise<object> {
    const name = modelName(msg);
    const stages = msg.stringList('stages').map(canonicalStage);
    const versions = await this.queries.latestVersions(name, stages);
    return versions.length > 0 ? { model_versions: versions.map(modelVersionJson) } : {};
  }

  @Post('set-tag')
  @HttpCode(200)
  async setTag(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = modelName(msg);
    const tag = registryTag(msg.requiredString('key'), msg.raw['value']);
    await this.commands.onModel(
      name,
      { type: 'SetRegisteredModelTag', ...tag },
      metadataOf(ctx, reasonOf(msg)),
    );
    return {};
  }

  @Delete('delete-tag')
  async deleteTag(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = modelName(msg);
    const key = msg.requiredString('key');
    await this.commands.onModel(
      name,
      { type: 'DeleteRegisteredModelTag', key },
      metadataOf(ctx, reasonOf(msg)),
    );
    return {};
  }

  @Post('alias')
  @HttpCode(200)
  async setAlias(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = modelName(msg);
    const alias = validateAliasName(msg.requiredString('alias'), true);
    const version = versionOf(msg);
    const expectedRevision = expectedRevisionOf(msg);
    const meta = metadataOf(ctx, reasonOf(msg));
    await this.governance.authorizeDirect(
      name,
      { kind: 'alias', alias },
      { action: 'set_alias', version },
      meta,
    );
    await this.commands.onModel(
      name,
      {
        type: 'SetRegisteredModelAlias',
        alias,
        version,
        ...(expectedRevision === undefined ? {} : { expectedRevision }),
      },
      meta,
    );
    return {};
  }

  @Delete('alias')
  async deleteAlias(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = modelName(msg);
    const alias = validateAliasName(msg.requiredString('alias'), false);
    const expectedRevision = expectedRevisionOf(msg);
    const meta = metadataOf(ctx, reasonOf(msg));
    await this.governance.authorizeDirect(
      name,
      { kind: 'alias', alias },
      { action: 'delete_alias' },
      meta,
    );
    await this.commands.onModel(
      name,
      {
        type: 'DeleteRegisteredModelAlias',
        alias,
        ...(expectedRevision === undefined ? {} : { expectedRevision }),
      },
      meta,
    );
    return {};
  }

  @Get('alias')
  async getByAlias(@Msg() msg: RequestMessage): Promise<object> {
    const name = modelName(msg);
    const alias = validateAliasName(msg.requiredString('alias'), false);
    return { model_version: modelVersionJson(await this.queries.versionByAlias(name, alias)) };
  }
}
