import { Inject, Injectable } from '@nestjs/common';
import { notFound } from '@ledgerflow/contracts';
import {
  metricChunkDirId,
  metricChunkId,
  metricSegmentId,
  metricSeriesId,
  readHistory,
  sampleSeries,
  seriesChunkLoader,
  type ChunkLoader,
  type DirPageLoader,
  type MetricChunkDirDoc,
  type MetricChunkDoc,
  type MetricHistoryPoint,
  type MetricSegmentDoc,
  type MetricSeriesDoc,
  type RunDoc,
} from '@ledgerflow/domain-tracking';
import type { ReadModelReader } from '@ledgerflow/projections';
import { READ_MODEL_READER } from './tokens.js';
import {
  METRIC_CHUNK_DIR,
  METRIC_CHUNKS,
  METRIC_SEGMENTS,
  METRIC_SERIES,
} from './metrics.projection.js';
import { RUNS } from './tracking.projection.js';

/** A sampled point with the run it belongs to (get-history-bulk[-interval]). */
export interface RunMetricPoint extends MetricHistoryPoint {
  readonly run_id: string;
}

/** The read side of metric history: answers from the metrics read model only. */
@Injectable()
export class MetricsQueries {
  constructor(@Inject(READ_MODEL_READER) private readonly reader: ReadModelReader) {}

  private series(runId: string, key: string): Promise<MetricSeriesDoc | undefined> {
    return this.reader.get<MetricSeriesDoc>(METRIC_SERIES, metricSeriesId(runId, key));
  }

  /** Sealed chunks as stored, the open chunk assembled from its segments. */
  private loader(series: MetricSeriesDoc): ChunkLoader {
    const { run_id: runId, key } = series;
    const seriesId = metricSeriesId(runId, key);
    return seriesChunkLoader(
      series,
      {
        chunk: (seq) =>
          this.reader.get<MetricChunkDoc>(METRIC_CHUNKS, metricChunkId(seriesId, seq)),
        segment: (seq, from, to) =>
          this.reader.get<MetricSegmentDoc>(
            METRIC_SEGMENTS,
            metricSegmentId(seriesId, seq, from, to),
          ),
      },
      () => this.series(runId, key),
    );
  }

  private dirLoader(runId: string, key: string): DirPageLoader {
    const seriesId = metricSeriesId(runId, key);
    return (page) =>
      this.reader.get<MetricChunkDirDoc>(METRIC_CHUNK_DIR, metricChunkDirId(seriesId, page));
  }

  /** One page of a metric's history in (timestamp, step, value) order; unknown run is a 404. */
  async history(
    runId: string,
    key: string,
    offset: number,
    limit: number | undefined,
  ): Promise<{ metrics: MetricHistoryPoint[]; more: boolean }> {
    if ((await this.reader.get<RunDoc>(RUNS, runId)) === undefined) {
      throw notFound(`Run with id=${runId} not found`);
    }
    const series = await this.series(runId, key);
    if (series === undefined) return { metrics: [], more: false };
    const page = await readHistory(series, this.loader(series), offset, limit);
    return { metrics: page.points.map((p) => ({ key, ...p })), more: page.more };
  }

  /** Each run's series sampled as MLflow's SQL store does, runs in the order asked. */
  async bulkInterval(
    runIds: readonly string[],
    key: string,
    maxResults: number,
    range: { start: number; end: number } | undefined,
  ): Promise<RunMetricPoint[]> {
    const out: RunMetricPoint[] = [];
    for (const runId of runIds) {
      const series = await this.series(runId, key);
      if (series === undefined) continue;
      const points = await sampleSeries(
        series,
        this.loader(series),
        maxResults,
        range,
        this.dirLoader(runId, key),
      );
      for (const p of points) out.push({ key, ...p, run_id: runId });
    }
    return out;
  }

  /** Full histories of several runs (by run id, then timestamp, step, value), at most `maxResults` in all. */
  async historyBulk(
    runIds: readonly string[],
    key: string,
    maxResults: number,
  ): Promise<RunMetricPoint[]> {
    const out: RunMetricPoint[] = [];
    for (const runId of [...new Set(runIds)].sort()) {
      if (out.length >= maxResults) break;
      const series = await this.series(runId, key);
      if (series === undefined) continue;
      const page = await readHistory(series, this.loader(series), 0, maxResults - out.length);
      for (const p of page.points) out.push({ key, ...p, run_id: runId });
    }
    return out;
  }
}
