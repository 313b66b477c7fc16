import { Controller, Get, HttpCode, Inject, Post } from '@nestjs/common';
import type { IdGenerator } from '@ledgerflow/contracts';
import { LEDGERFLOW_CONFIG, type LedgerflowConfig } from '@ledgerflow/config';
import { USER_TAG, validateExperimentId } from '@ledgerflow/domain-tracking';
import { Ctx, metadataOf, Msg, type RequestContext, type RequestMessage } from '@ledgerflow/http';
import { param, runIdOf, runStatus, runTag, runTags } from './tracking.requests.js';
import { TrackingCommands } from './tracking.commands.js';
import { runInfoJson, runJson } from './tracking.json.js';
import { TrackingQueries } from './tracking.queries.js';
import { RUN_IDS } from './tokens.js';

/** MLflow's run endpoints, under /api/2.0 and the /ajax-api/2.0 mirror. */
@Controller(['api/2.0/mlflow/runs', 'ajax-api/2.0/mlflow/runs'])
export class RunsController {
  constructor(
    @Inject(TrackingCommands) private readonly commands: TrackingCommands,
    @Inject(TrackingQueries) private readonly queries: TrackingQueries,
    @Inject(LEDGERFLOW_CONFIG) private readonly config: LedgerflowConfig,
    @Inject(RUN_IDS) private readonly runIds: IdGenerator,
  ) {}

  @Post('create')
  @HttpCode(200)
  async create(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const experimentId = validateExperimentId(msg.optionalId('experiment_id') || '0');
    const tags = runTags(msg, this.config.truncateLongValues);
    const userId =
      msg.optionalString('user_id') || tags.find((t) => t.key === USER_TAG)?.value || '';
    const runId = await this.commands.createRun(
      {
        experimentId,
        userId,
        runName: msg.optionalString('run_name') || null,
        startTime: msg.optionalInt('start_time') ?? Date.now(),
        tags,
      },
      this.runIds.next(),
      metadataOf(ctx),
    );
    return { run: runJson(await this.queries.run(runId)) };
  }

  @Get('get')
  async get(@Msg() msg: RequestMessage): Promise<object> {
    return { run: runJson(await this.queries.run(runIdOf(msg))) };
  }

  @Post('update')
  @HttpCode(200)
  async update(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const runId = runIdOf(msg);
    await this.commands.run(
      runId,
      {
        type: 'UpdateRun',
        runId,
        status: runStatus(msg) ?? null,
        endTime: msg.optionalInt('end_time') ?? null,
        runName: msg.optionalString('run_name') || null,
      },
      metadataOf(ctx),
    );
    return { run_info: runInfoJson(await this.queries.run(runId)) };
  }

  @Post('delete')
  @HttpCode(200)
  async delete(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const runId = runIdOf(msg);
    await this.commands.run(runId, { type: 'DeleteRun', runId }, metadataOf(ctx));
    return {};
  }

  @Post('restore')
  @HttpCode(200)
  async restore(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const runId = runIdOf(msg);
    await this.commands.run(runId, { type: 'RestoreRun', runId }, metadataOf(ctx));
    return {};
  }

  @Post('set-tag')
  @HttpCode(200)
  async setTag(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const runId = runIdOf(msg);
    const tag = runTag(
      msg.requiredString('key'),
      msg.optionalString('value') ?? '',
      this.config.truncateLongValues,
    );
    await this.commands.run(runId, { type: 'SetRunTags', runId, tags: [tag] }, metadataOf(ctx));
    return {};
  }

  @Post('delete-tag')
  @HttpCode(200)
  async deleteTag(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const runId = runIdOf(msg);
    await this.commands.run(
      runId,
      { type: 'DeleteRunTag', runId, key: msg.requiredString('key') },
      metadataOf(ctx),
    );
    return {};
  }

  @Post('log-parameter')
  @HttpCode(200)
  async logParam(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const runId = runIdOf(msg);
    const p = param(
      msg.requiredString('key'),
      msg.optionalString('value') ?? '',
      this.config.truncateLongValues,
    );
    await this.commands.run(runId, { type: 'LogRunParams', runId, params: [p] }, metadataOf(ctx));
    return {};
  }
}
