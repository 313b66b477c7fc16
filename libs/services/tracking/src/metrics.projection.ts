import type { RecordedEvent } from '@ledgerflow/contracts';
import {
  appendToSeries,
  DEFAULT_METRIC_CHUNK_SIZE,
  metricChunkDirId,
  metricChunkId,
  metricSeriesId,
  metricSeriesOf,
  pointsByKeyOfSeries,
  type MetricChunkDirDoc,
  type MetricChunkDoc,
  type MetricSeries,
  type MetricSeriesDoc,
} from '@ledgerflow/domain-tracking';
import type { Projection, ReadModelWriter } from '@ledgerflow/projections';

export const METRIC_SERIES = 'metric_series';
export const METRIC_CHUNKS = 'metric_chunks';
export const METRIC_CHUNK_DIR = 'metric_chunk_dir';

/**
 * The metric history read model: per (run, key) a series document and columnar chunks of points
 * (see metric-chunks.ts in the domain), never a row per point. MetricsLogged (REST) and
 * MetricBatchIngested (gRPC) events touch it; a batch rewrites just the open chunk of each key.
 * A series that arrives out of order in both step and timestamp also keeps a chunk directory
 * (METRIC_CHUNK_DIR pages), written when a chunk fills, so duplicate checks read only the chunks
 * a batch's keys may be in.
 */
export function createMetricsProjection(chunkSize = DEFAULT_METRIC_CHUNK_SIZE): Projection {
  return {
    name: 'metrics',
    version: 3,
    collections: [
      { name: METRIC_SERIES, indexes: ['run_id'] },
      { name: METRIC_CHUNKS },
      { name: METRIC_CHUNK_DIR },
    ],
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
      {
        chunk: (seq) => writer.get<MetricChunkDoc>(METRIC_CHUNKS, metricChunkId(seriesId, seq)),
        dirPage: (page) =>
          writer.get<MetricChunkDirDoc>(METRIC_CHUNK_DIR, metricChunkDirId(seriesId, page)),
      },
      chunkSize,
    );
    if (result.appended === 0 || result.series === undefined) continue;
    for (const chunk of result.chunks) {
      await writer.put(METRIC_CHUNKS, metricChunkId(seriesId, chunk.seq), chunk);
    }
    for (const page of result.dirPages) {
      await writer.put(METRIC_CHUNK_DIR, metricChunkDirId(seriesId, page.page), page);
    }
    await writer.put(METRIC_SERIES, seriesId, result.series);
  }
}

/** The metrics read model with the default chunk size. */
export const metricsProjection: Projection = createMetricsProjection();
