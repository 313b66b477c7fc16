import type { RecordedEvent } from '@ledgerflow/contracts';
import {
  appendToSeries,
  DEFAULT_METRIC_CHUNK_SIZE,
  metricChunkDirId,
  metricChunkId,
  metricSegmentId,
  metricSeriesId,
  metricSeriesOf,
  pointsByKeyOfSeries,
  type MetricChunkDirDoc,
  type MetricChunkDoc,
  type MetricSegmentDoc,
  type MetricSeries,
  type MetricSeriesDoc,
} from '@ledgerflow/domain-tracking';
import type { Projection, ReadModelWriter } from '@ledgerflow/projections';

export const METRIC_SERIES = 'metric_series';
export const METRIC_CHUNKS = 'metric_chunks';
export const METRIC_CHUNK_DIR = 'metric_chunk_dir';
export const METRIC_SEGMENTS = 'metric_segments';

/**
 * The metric history read model: per (run, key) a series document and columnar chunks of points
 * (see metric-chunks.ts in the domain), never a row per point. MetricsLogged (REST) and
 * MetricBatchIngested (gRPC) events touch it. A batch writes each key's new points as one small
 * segment of the open chunk (METRIC_SEGMENTS), so its cost follows the points it carries, not the
 * size of the open chunk; a chunk document is written once, when the chunk fills.
 * A series that arrives out of order in both step and timestamp also keeps a chunk directory
 * (METRIC_CHUNK_DIR pages), written when a chunk fills, so duplicate checks read only the chunks
 * a batch's keys may be in.
 */
export function createMetricsProjection(chunkSize = DEFAULT_METRIC_CHUNK_SIZE): Projection {
  return {
    name: 'metrics',
    version: 4,
    collections: [
      // read by id only: no index to maintain on every append
      { name: METRIC_SERIES },
      { name: METRIC_CHUNKS },
      { name: METRIC_CHUNK_DIR },
      { name: METRIC_SEGMENTS },
    ],
    async apply(event: RecordedEvent, writer: ReadModelWriter): Promise<void> {
      // REST batches (MetricsLogged) and gRPC batches (MetricBatchIngested, possibly several runs)
      for (const series of metricSeriesOf(event)) {
        await appendSeries(series, writer, chunkSize);
      }
    },
  };
}

/** Appends one run's points to its series, key by key: a segment per key, a chunk when one fills. */
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
        segment: (seq, from, to) =>
          writer.get<MetricSegmentDoc>(METRIC_SEGMENTS, metricSegmentId(seriesId, seq, from, to)),
        dirPage: (page) =>
          writer.get<MetricChunkDirDoc>(METRIC_CHUNK_DIR, metricChunkDirId(seriesId, page)),
      },
      chunkSize,
    );
    if (result.appended === 0 || result.series === undefined) continue;
    for (const chunk of result.chunks) {
      await writer.put(METRIC_CHUNKS, metricChunkId(seriesId, chunk.seq), chunk);
    }
    for (const id of result.removedSegments) await writer.delete(METRIC_SEGMENTS, id);
    for (const segment of result.segments) {
      await writer.put(
        METRIC_SEGMENTS,
        metricSegmentId(seriesId, segment.seq, segment.from, segment.from + segment.n),
        segment,
      );
    }
    for (const page of result.dirPages) {
      await writer.put(METRIC_CHUNK_DIR, metricChunkDirId(seriesId, page.page), page);
    }
    await writer.put(METRIC_SERIES, seriesId, result.series);
  }
}

/**
 * The metrics read model with the default chunk size. Embedded mode applies it on a worker thread
 * (it imports this export from this module), in a database file of its own.
 */
export const metricsProjection: Projection = {
  ...createMetricsProjection(),
  offThread: { url: import.meta.url, exportName: 'metricsProjection' },
};
