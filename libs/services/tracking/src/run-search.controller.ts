import { Controller, HttpCode, Inject, Post } from '@nestjs/common';
import {
  DEFAULT_RUNS_PER_PAGE,
  parseDatasetInputs,
  parseModelInputs,
} from '@ledgerflow/domain-tracking';
import { Ctx, metadataOf, Msg, type RequestContext, type RequestMessage } from '@ledgerflow/http';
import { RunInputsCommands } from './run-inputs.commands.js';
import { RunSearchQueries } from './run-search.queries.js';
import { runIdOf, viewType } from './tracking.requests.js';
import { runJson } from './tracking.json.js';

/** runs/search and runs/log-inputs, under /api/2.0 and the /ajax-api/2.0 mirror. */
@Controller(['api/2.0/mlflow/runs', 'ajax-api/2.0/mlflow/runs'])
export class RunSearchController {
  constructor(
    @Inject(RunSearchQueries) private readonly queries: RunSearchQueries,
    @Inject(RunInputsCommands) private readonly commands: RunInputsCommands,
  ) {}

  @Post('search')
  @HttpCode(200)
  async search(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const filter = msg.optionalString('filter');
    const pageToken = msg.optionalString('page_token');
    const result = await this.queries.search(
      {
        experimentIds: msg.stringList('experiment_ids'),
        maxResults: msg.optionalInt('max_results') ?? DEFAULT_RUNS_PER_PAGE,
        viewType: viewType(msg, 'run_view_type'),
        orderBy: msg.stringList('order_by'),
        ...(filter ? { filter } : {}),
        ...(pageToken ? { pageToken } : {}),
      },
      await ctx.readScope?.experiments(),
    );
    const out: Record<string, unknown> = {};
    if (result.runs.length > 0) out['runs'] = result.runs.map(runJson);
    if (result.nextPageToken !== undefined) out['next_page_token'] = result.nextPageToken;
    return out;
  }

  @Post('log-inputs')
  @HttpCode(200)
  async logInputs(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const runId = runIdOf(msg);
    const datasets = parseDatasetInputs(msg.objectList('datasets'));
    const models = parseModelInputs(msg.objectList('models'));
    await this.commands.logInputs(
      { type: 'LogRunInputs', runId, datasets, models },
      metadataOf(ctx),
    );
    return {};
  }
}
