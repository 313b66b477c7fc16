import type { RecordedEvent } from '@ledgerflow/contracts';
import {
  appendToSeries,
  DEFAULT_METRIC_CHUNK_SIZE,
  metricChunkId,
  metricSeriesId,
  metricSeriesOf,
  pointsByKeyOfSeries,
  type MetricChunkDoc,
  type MetricSeries,
  type MetricSeriesDoc,
} from '@ledgerflow/domain-tracking';
import type { Projection, ReadModelWriter } from '@ledgerflow/projections';

export const METRIC_SERIES = 'metric_series';
export const METRIC_CHUNKS = 'metric_chunks';

/**
 * The metric history read model: per (run, key) a series document and columnar chunks of points
 * (see metric-chunks.ts in the domain), never a row per point. MetricsLogged (REST) and
 * MetricBatchIngested (gRPC) events touch it; a batch rewrites just the open chunk of each key.
 */
export function createMetricsProjection(chunkSize = DEFAULT_METRIC_CHUNK_SIZE): Projection {
  return {
    name: 'metrics',
    version: 2,
    collections: [{ name: METRIC_SERIES, indexes: ['run_id'] }, { name: METRIC_CHUNKS }],
    async apply(event: RecordedEvent, writer: ReadModelWriter): Promise<void> {
      // REST batches (MetricsLogged) and gRPC batches (MetricBatchIngested, possibly several runs)
      for (const series of metricSeriesOf(event)) {
        await appendSeries(series, writer, chunkSize);
      }
    },
  };
}

/** Appends one run's points to its series, key by key, rewriting only each key's open chunk. */
async function appendSeries(
  series: MetricSeries,
  writer: ReadModelWriter,
  chunkSize: number,
): Promise<void> {
  for (const [key, points] of pointsByKeyOfSeries(series)) {
    const seriesId = metricSeriesId(series.runId, key);
    const current = await writer.get<MetricSeriesDoc>(METRIC_SERIES, seriesId);
    const result = await appendToSeries(
      series.runId,
      key,
      current,
      points,
      (seq) => writer.get<MetricChunkDoc>(METRIC_CHUNKS, metricChunkId(seriesId, seq)),
      chunkSize,
    );
    if (result.appended === 0 || result.series === undefined) continue;
    for (const chunk of result.chunks) {
      await writer.put(METRIC_CHUNKS, metricChunkId(seriesId, chunk.seq), chunk);
    }
    await writer.put(METRIC_SERIES, seriesId, result.series);
  }
}

/** The metrics read model with the default chunk size. */
export const metricsProjection: Projection = createMetricsProjection();
