import { Controller, Get, HttpCode, Inject, Post } from '@nestjs/common';
import { LEDGERFLOW_CONFIG, type LedgerflowConfig } from '@ledgerflow/config';
import {
  validateArtifactLocation,
  validateExperimentId,
  validateExperimentName,
} from '@ledgerflow/domain-tracking';
import { Ctx, metadataOf, Msg, type RequestContext, type RequestMessage } from '@ledgerflow/http';
import { experimentTag, experimentTags, viewType } from './tracking.requests.js';
import { TrackingCommands } from './tracking.commands.js';
import { experimentJson } from './tracking.json.js';
import { TrackingQueries } from './tracking.queries.js';

/** MLflow's experiment endpoints, under /api/2.0 and the /ajax-api/2.0 mirror. */
@Controller(['api/2.0/mlflow/experiments', 'ajax-api/2.0/mlflow/experiments'])
export class ExperimentsController {
  constructor(
    @Inject(TrackingCommands) private readonly commands: TrackingCommands,
    @Inject(TrackingQueries) private readonly queries: TrackingQueries,
    @Inject(LEDGERFLOW_CONFIG) private readonly config: LedgerflowConfig,
  ) {}

  @Post('create')
  @HttpCode(200)
  async create(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const name = validateExperimentName(msg.requiredString('name'));
    const location = msg.optionalString('artifact_location');
    const tags = experimentTags(msg);
    const id = await this.commands.createExperiment(
      name,
      location ? validateArtifactLocation(location) : undefined,
      this.config.defaultArtifactRoot,
      tags,
      metadataOf(ctx),
    );
    return { experiment_id: id };
  }

  @Get('get')
  async get(@Msg() msg: RequestMessage): Promise<object> {
    const id = validateExperimentId(msg.requiredId('experiment_id'));
    return { experiment: experimentJson(await this.queries.experiment(id)) };
  }

  @Get('get-by-name')
  async getByName(@Msg() msg: RequestMessage): Promise<object> {
    return {
      experiment: experimentJson(
        await this.queries.experimentByName(msg.requiredString('experiment_name')),
      ),
    };
  }

  @Get('search')
  async searchGet(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    return this.search(msg, ctx);
  }

  @Post('search')
  @HttpCode(200)
  async search(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const filter = msg.optionalString('filter');
    const pageToken = msg.optionalString('page_token');
    const result = await this.queries.searchExperiments(
      {
        maxResults: msg.optionalInt('max_results') ?? 1000,
        viewType: viewType(msg, 'view_type'),
        orderBy: msg.stringList('order_by'),
        ...(filter === undefined ? {} : { filter }),
        ...(pageToken === undefined ? {} : { pageToken }),
      },
      await ctx.readScope?.experiments(),
    );
    const out: Record<string, unknown> = {};
    if (result.experiments.length > 0) out['experiments'] = result.experiments.map(experimentJson);
    if (result.nextPageToken !== undefined) out['next_page_token'] = result.nextPageToken;
    return out;
  }

  @Post('update')
  @HttpCode(200)
  async update(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const id = validateExperimentId(msg.requiredId('experiment_id'));
    const newName = validateExperimentName(msg.requiredString('new_name'));
    await this.commands.renameExperiment(id, newName, metadataOf(ctx));
    return {};
  }

  @Post('delete')
  @HttpCode(200)
  async delete(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const experimentId = validateExperimentId(msg.requiredId('experiment_id'));
    await this.commands.experiment(
      experimentId,
      { type: 'DeleteExperiment', experimentId },
      metadataOf(ctx),
    );
    return {};
  }

  @Post('restore')
  @HttpCode(200)
  async restore(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const experimentId = validateExperimentId(msg.requiredId('experiment_id'));
    await this.commands.experiment(
      experimentId,
      { type: 'RestoreExperiment', experimentId },
      metadataOf(ctx),
    );
    return {};
  }

  @Post('set-experiment-tag')
  @HttpCode(200)
  async setTag(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const experimentId = validateExperimentId(msg.requiredId('experiment_id'));
    const tag = experimentTag(msg.requiredString('key'), msg.optionalString('value') ?? '');
    await this.commands.experiment(
      experimentId,
      { type: 'SetExperimentTag', experimentId, ...tag },
      metadataOf(ctx),
    );
    return {};
  }

  @Post('delete-experiment-tag')
  @HttpCode(200)
  async deleteTag(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const experimentId = validateExperimentId(msg.requiredId('experiment_id'));
    const key = msg.requiredString('key');
    await this.commands.experiment(
      experimentId,
      { type: 'DeleteExperimentTag', experimentId, key },
      metadataOf(ctx),
    );
    return {};
  }
}
