import { Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post } from '@nestjs/common';
import { MlflowError, invalidParameter, type IdGenerator } from '@ledgerflow/contracts';
import {
  LOGGED_MODEL_STATUS_NUMBERS,
  LOGGED_MODEL_STATUSES,
  SEARCH_LOGGED_MODELS_DEFAULT_MAX_RESULTS,
  validateExperimentId,
} from '@ledgerflow/domain-tracking';
import { Ctx, metadataOf, Msg, type RequestContext, type RequestMessage } from '@ledgerflow/http';
import { LoggedModelCommands } from './logged-models.commands.js';
import { loggedModelJson } from './logged-models.json.js';
import { LoggedModelQueries } from './logged-models.queries.js';
import {
  datasetFilters,
  loggedModelKeyValues,
  loggedModelOrderBy,
} from './logged-models.requests.js';
import { RUN_IDS } from './tokens.js';

/** When max_results is 0, MLflow's handler passes None and its store falls back to 100. */
const STORE_DEFAULT_MAX_RESULTS = 100;

/** MLflow 3's logged-model endpoints, under /api/2.0 and the /ajax-api/2.0 mirror. */
@Controller(['api/2.0/mlflow/logged-models', 'ajax-api/2.0/mlflow/logged-models'])
export class LoggedModelsController {
  constructor(
    @Inject(LoggedModelCommands) private readonly commands: LoggedModelCommands,
    @Inject(LoggedModelQueries) private readonly queries: LoggedModelQueries,
    @Inject(RUN_IDS) private readonly ids: IdGenerator,
  ) {}

  @Post()
  @HttpCode(200)
  async create(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const modelId = `m-${this.ids.next()}`;
    await this.commands.create(
      {
        experimentId: validateExperimentId(msg.requiredId('experiment_id')),
        name: msg.optionalString('name') || null,
        modelType: msg.optionalString('model_type') || null,
        sourceRunId: msg.optionalString('source_run_id') || null,
        params: loggedModelKeyValues(msg, 'params'),
        tags: loggedModelKeyValues(msg, 'tags'),
      },
      modelId,
      metadataOf(ctx),
    );
    return { model: loggedModelJson(await this.queries.model(modelId)) };
  }

  @Post('search')
  @HttpCode(200)
  async search(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    if (!msg.has('experiment_ids')) {
      throw invalidParameter(
        "Missing value for required parameter 'experiment_ids'. See the API docs for more information about request parameters.",
      );
    }
    const requested = msg.optionalInt('max_results');
    if (requested !== undefined && requested < 0) {
      throw invalidParameter(
        `Invalid value ${requested} for parameter 'max_results' supplied. It must be a non-negative integer.`,
      );
    }
    const filter = msg.optionalString('filter');
    const pageToken = msg.optionalString('page_token');
    const readable = await ctx.readScope?.experiments();
    const { models, nextPageToken } = await this.queries.search(
      {
        experimentIds: msg.stringList('experiment_ids').map(validateExperimentId),
        ...(filter ? { filter } : {}),
        datasets: datasetFilters(msg),
        maxResults:
          requested === undefined
            ? SEARCH_LOGGED_MODELS_DEFAULT_MAX_RESULTS
            : requested || STORE_DEFAULT_MAX_RESULTS,
        orderBy: loggedModelOrderBy(msg),
        ...(pageToken ? { pageToken } : {}),
      },
      readable,
    );
    return {
      ...(models.length > 0 ? { models: models.map(loggedModelJson) } : {}),
      ...(nextPageToken ? { next_page_token: nextPageToken } : {}),
    };
  }

  @Get(':model_id')
  async get(@Param('model_id') modelId: string, @Msg() msg: RequestMessage): Promise<object> {
    const allowDeleted = msg.optionalBool('allow_deleted') ?? false;
    return { model: loggedModelJson(await this.queries.model(modelId, allowDeleted)) };
  }

  @Patch(':model_id')
  async finalize(
    @Param('model_id') modelId: string,
    @Msg() msg: RequestMessage,
    @Ctx() ctx: RequestContext,
  ): Promise<object> {
    const status = msg.optionalEnum('status', LOGGED_MODEL_STATUSES, LOGGED_MODEL_STATUS_NUMBERS);
    if (status === undefined) {
      throw invalidParameter(
        "Missing value for required parameter 'status'. See the API docs for more information about request parameters.",
      );
    }
    await this.commands.model({ type: 'FinalizeLoggedModel', modelId, status }, metadataOf(ctx));
    // a deleted model can be finalized, as in MLflow, and the answer still shows it
    return { model: loggedModelJson(await this.queries.model(modelId, true)) };
  }

  @Delete(':model_id')
  async delete(@Param('model_id') modelId: string, @Ctx() ctx: RequestContext): Promise<object> {
    await this.commands.model({ type: 'DeleteLoggedModel', modelId }, metadataOf(ctx));
    return {};
  }

  @Patch(':model_id/tags')
  async setTags(
    @Param('model_id') modelId: string,
    @Msg() msg: RequestMessage,
    @Ctx() ctx: RequestContext,
  ): Promise<object> {
    const tags = loggedModelKeyValues(msg, 'tags');
    await this.commands.model({ type: 'SetLoggedModelTags', modelId, tags }, metadataOf(ctx));
    return {};
  }

  @Delete(':model_id/tags/:tag_key')
  async deleteTag(
    @Param('model_id') modelId: string,
    @Param('tag_key') key: string,
    @Ctx() ctx: RequestContext,
  ): Promise<object> {
    await this.commands.model({ type: 'DeleteLoggedModelTag', modelId, key }, metadataOf(ctx));
    return {};
  }

  @Post(':model_id/params')
  @HttpCode(200)
  async logParams(
    @Param('model_id') modelId: string,
    @Msg() msg: RequestMessage,
    @Ctx() ctx: RequestContext,
  ): Promise<object> {
    const params = loggedModelKeyValues(msg, 'params');
    await this.commands.model({ type: 'LogLoggedModelParams', modelId, params }, metadataOf(ctx));
    return {};
  }

  @Get(':model_id/artifacts/directories')
  async listArtifacts(@Param('model_id') modelId: string): Promise<object> {
    await this.queries.model(modelId);
    throw new MlflowError(
      'NOT_IMPLEMENTED',
      'Listing logged-model artifacts is not available yet: artifact storage arrives in a later release.',
    );
  }
}
