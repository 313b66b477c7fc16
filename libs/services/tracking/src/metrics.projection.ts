import type { RecordedEvent } from '@ledgerflow/contracts';
import {
  appendToSeries,
  DEFAULT_METRIC_CHUNK_SIZE,
  metricChunkId,
  metricSeriesId,
  pointsByKey,
  type MetricChunkDoc,
  type MetricsLogged,
  type MetricSeriesDoc,
} from '@ledgerflow/domain-tracking';
import type { Projection, ReadModelWriter } from '@ledgerflow/projections';

export const METRIC_SERIES = 'metric_series';
export const METRIC_CHUNKS = 'metric_chunks';

/**
 * The metric history read model: per (run, key) a series document and columnar chunks of points
 * (see metric-chunks.ts in the domain), never a row per point. Only MetricsLogged events touch
 * it; a batch rewrites just the open chunk of each key it carries.
 */
export function createMetricsProjection(chunkSize = DEFAULT_METRIC_CHUNK_SIZE): Projection {
  return {
    name: 'metrics',
    version: 1,
    collections: [{ name: METRIC_SERIES, indexes: ['run_id'] }, { name: METRIC_CHUNKS }],
    async apply(event: RecordedEvent, writer: ReadModelWriter): Promise<void> {
      if (event.type !== 'MetricsLogged') return;
      const data = (event as unknown as MetricsLogged).data;
      for (const [key, points] of pointsByKey(data)) {
        const seriesId = metricSeriesId(data.runId, key);
        const current = await writer.get<MetricSeriesDoc>(METRIC_SERIES, seriesId);
        const result = await appendToSeries(
          data.runId,
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
    },
  };
}

/** The metrics read model with the default chunk size. */
export const metricsProjection: Projection = createMetricsProjection();
