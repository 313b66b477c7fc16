import { Controller, Get, HttpCode, Inject, Post } from '@nestjs/common';
import { invalidParameter } from '@ledgerflow/contracts';
import { LEDGERFLOW_CONFIG, type LedgerflowConfig } from '@ledgerflow/config';
import {
  decodePageToken,
  encodePageToken,
  parseInt64,
  parseMetric,
  validateRunId,
  type MetricHistoryPoint,
} from '@ledgerflow/domain-tracking';
import { Ctx, metadataOf, Msg, type RequestContext, type RequestMessage } from '@ledgerflow/http';
import { MetricsQueries, type RunMetricPoint } from './metrics.queries.js';
import { TrackingCommands } from './tracking.commands.js';
import { metricValueJson } from './tracking.json.js';
import { param, runIdOf, runTag } from './tracking.requests.js';

const DOCS_HINT = ' See the API docs for more information about request parameters.';
/** MLflow's MAX_RUNS_GET_METRIC_HISTORY_BULK and MAX_RESULTS_PER_RUN. */
const MAX_RUNS_PER_BULK_REQUEST = 100;
const MAX_RESULTS_PER_RUN = 2500;
/** The ajax-only get-history-bulk's cap. */
const MAX_HISTORY_BULK_RESULTS = 25000;

function pointJson(p: MetricHistoryPoint): Record<string, unknown> {
  return {
    key: p.key,
    value: metricValueJson(p.value, Number.isNaN(p.value)),
    timestamp: p.timestamp,
    step: p.step,
  };
}

function runPointJson(p: RunMetricPoint): Record<string, unknown> {
  return { ...pointJson(p), run_id: p.run_id };
}

/** The metrics of a response, omitted when empty as MLflow's JSON does. */
function metricsBody(points: Record<string, unknown>[]): object {
  return points.length === 0 ? {} : { metrics: points };
}

/** Raw query value of an int field (last occurrence), or undefined. */
function queryInt(msg: RequestMessage, field: string, message?: string): number | undefined {
  if (!msg.has(field)) return undefined;
  let raw = msg.raw[field];
  if (Array.isArray(raw)) raw = raw[raw.length - 1];
  const n = parseInt64(raw);
  if (n === undefined) {
    throw invalidParameter(
      message ??
        `Invalid value ${JSON.stringify(raw)} for parameter '${field}' supplied. Hint: Value was of type '${typeof raw === 'string' ? 'str' : typeof raw}'.${DOCS_HINT}`,
    );
  }
  return n;
}

/**
 * Runs tasks one at a time per key. Clients log to one run from many threads (MLflow's async
 * logging uses a pool of 10): deciding them concurrently on the same run revision would make all
 * but one fail the expected-revision check per group commit and exhaust the store's retries.
 */
class KeyedLanes {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const next = previous.then(task, task);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await next;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/** MLflow's metric logging and history endpoints, under /api/2.0 and the /ajax-api/2.0 mirror. */
@Controller(['api/2.0/mlflow', 'ajax-api/2.0/mlflow'])
export class MetricsController {
  private readonly runLanes = new KeyedLanes();

  constructor(
    @Inject(TrackingCommands) private readonly commands: TrackingCommands,
    @Inject(MetricsQueries) private readonly queries: MetricsQueries,
    @Inject(LEDGERFLOW_CONFIG) private readonly config: LedgerflowConfig,
  ) {}

  @Post('runs/log-metric')
  @HttpCode(200)
  async logMetric(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const runId = runIdOf(msg);
    const metric = parseMetric(msg.raw, '');
    await this.runLanes.run(runId, () =>
      this.commands.run(runId, { type: 'LogMetrics', runId, metrics: [metric] }, metadataOf(ctx)),
    );
    return {};
  }

  @Post('runs/log-batch')
  @HttpCode(200)
  async logBatch(@Msg() msg: RequestMessage, @Ctx() ctx: RequestContext): Promise<object> {
    const runId = msg.optionalString('run_id');
    if (!runId)
      throw invalidParameter(`Missing value for required parameter 'run_id'.${DOCS_HINT}`);
    validateRunId(runId);
    const truncate = this.config.truncateLongValues;
    const rawMetrics = msg.objectList('metrics');
    const rawParams = msg.objectList('params');
    const rawTags = msg.objectList('tags');
    // MLflow checks that required fields are present in every item before validating any value
    rawMetrics.forEach((m, i) => {
      for (const field of ['key', 'value', 'timestamp']) {
        if (m[field] === undefined || m[field] === null || m[field] === '') {
          throw invalidParameter(
            `Missing value for required parameter 'metrics[${i}].${field}'.${DOCS_HINT}`,
          );
        }
      }
    });
    for (const [list, name] of [
      [rawParams, 'params'],
      [rawTags, 'tags'],
    ] as const) {
      list.forEach((item, i) => {
        if (item['key'] === undefined || item['key'] === null || item['key'] === '') {
          throw invalidParameter(
            `Missing value for required parameter '${name}[${i}].key'.${DOCS_HINT}`,
          );
        }
      });
    }
    const metrics = rawMetrics.map((m, i) => parseMetric(m, `metrics[${i}]`));
    const params = rawParams.map((p, i) => param(p['key'], p['value'], truncate, `params[${i}]`));
    const tags = rawTags.map((t, i) => runTag(t['key'], t['value'], truncate, `tags[${i}]`));
    await this.runLanes.run(runId, () =>
      this.commands.run(runId, { type: 'LogBatch', runId, metrics, params, tags }, metadataOf(ctx)),
    );
    return {};
  }

  @Get('metrics/get-history')
  async getHistory(@Msg() msg: RequestMessage): Promise<object> {
    const runId = runIdOf(msg);
    const key = msg.requiredString('metric_key');
    const maxResults = queryInt(msg, 'max_results');
    if (maxResults !== undefined && maxResults <= 0) {
      throw invalidParameter(
        `Invalid value ${maxResults} for parameter 'max_results' supplied. It must be a positive integer.`,
      );
    }
    const offset = decodePageToken(msg.optionalString('page_token'));
    const page = await this.queries.history(runId, key, offset, maxResults);
    return {
      ...metricsBody(page.metrics.map(pointJson)),
      ...(page.more && maxResults !== undefined
        ? { next_page_token: encodePageToken(offset + maxResults) }
        : {}),
    };
  }

  @Get('metrics/get-history-bulk-interval')
  async getHistoryBulkInterval(@Msg() msg: RequestMessage): Promise<object> {
    if (!msg.has('run_ids')) {
      throw invalidParameter(`Missing value for required parameter 'run_ids'.${DOCS_HINT}`);
    }
    const runIds = msg.stringList('run_ids');
    if (runIds.length > MAX_RUNS_PER_BULK_REQUEST) {
      throw invalidParameter(
        `GetMetricHistoryBulkInterval request must specify at most ${MAX_RUNS_PER_BULK_REQUEST} run_ids. Received ${runIds.length} run_ids.${DOCS_HINT}`,
      );
    }
    const key = msg.requiredString('metric_key');
    const start = queryInt(msg, 'start_step');
    const end = queryInt(msg, 'end_step');
    const rangeMessage = `max_results must be between 1 and ${MAX_RESULTS_PER_RUN}.${DOCS_HINT}`;
    const maxResults = queryInt(msg, 'max_results', rangeMessage) ?? MAX_RESULTS_PER_RUN;
    if (maxResults < 1 || maxResults > MAX_RESULTS_PER_RUN) throw invalidParameter(rangeMessage);
    let range: { start: number; end: number } | undefined;
    if (start !== undefined && end !== undefined) {
      if (start > end) {
        throw invalidParameter(
          `end_step must be greater than start_step. Found start_step=${start} and end_step=${end}.`,
        );
      }
      range = { start, end };
    } else if (start !== undefined || end !== undefined) {
      throw invalidParameter(
        'If either start step or end step are specified, both must be specified.',
      );
    }
    const points = await this.queries.bulkInterval(runIds, key, maxResults, range);
    return metricsBody(points.map(runPointJson));
  }
}

/** The UI's get-history-bulk, which MLflow serves only under /ajax-api. */
@Controller('ajax-api/2.0/mlflow')
export class MetricsAjaxController {
  constructor(@Inject(MetricsQueries) private readonly queries: MetricsQueries) {}

  @Get('metrics/get-history-bulk')
  async getHistoryBulk(@Msg() msg: RequestMessage): Promise<object> {
    const runIds = msg.stringList('run_id');
    if (runIds.length === 0) {
      throw invalidParameter('GetMetricHistoryBulk request must specify at least one run_id.');
    }
    if (runIds.length > MAX_RUNS_PER_BULK_REQUEST) {
      throw invalidParameter(
        `GetMetricHistoryBulk request cannot specify more than ${MAX_RUNS_PER_BULK_REQUEST} run_ids. Received ${runIds.length} run_ids.`,
      );
    }
    const key = msg.optionalString('metric_key');
    if (key === undefined) {
      throw invalidParameter('GetMetricHistoryBulk request must specify a metric_key.');
    }
    const maxResults = Math.min(
      queryInt(msg, 'max_results') ?? MAX_HISTORY_BULK_RESULTS,
      MAX_HISTORY_BULK_RESULTS,
    );
    if (maxResults <= 0) return {};
    const points = await this.queries.historyBulk(runIds, key, maxResults);
    // MLflow's handler always includes the list here
    return { metrics: points.map(runPointJson) };
  }
}
