import type { RecordedEvent } from '@ledgerflow/contracts';
import {
  cascadeExperimentLifecycle,
  evolveExperimentDoc,
  evolveRunDoc,
  latestMetricsAfterSeries,
  metricSeriesOf,
  EXPERIMENT_EVENT_TYPES,
  RUN_EVENT_TYPES,
  type ExperimentDoc,
  type ExperimentEvent,
  type RunDoc,
  type RunEvent,
} from '@ledgerflow/domain-tracking';
import type { Projection, ReadModelWriter } from '@ledgerflow/projections';

export const EXPERIMENTS = 'experiments';
export const RUNS = 'runs';

const experimentTypes = new Set<string>(EXPERIMENT_EVENT_TYPES);
const runTypes = new Set<string>(RUN_EVENT_TYPES);

/**
 * The tracking read model: experiments and runs as MLflow shows them. Built only from events, so
 * `ledgerflow rebuild tracking` reproduces it exactly.
 */
export const trackingProjection: Projection = {
  name: 'tracking',
  version: 1,
  collections: [
    { name: EXPERIMENTS, indexes: ['name'] },
    // cached: runs/search scans thousands of runs per query, which must not mean parsing JSON
    { name: RUNS, indexes: ['experiment_id'], cached: true },
  ],
  async apply(event: RecordedEvent, writer: ReadModelWriter): Promise<void> {
    if (experimentTypes.has(event.type)) {
      const e = event as unknown as ExperimentEvent & RecordedEvent;
      const id = e.data.experimentId;
      const doc = await writer.get<ExperimentDoc>(EXPERIMENTS, id);
      const next = evolveExperimentDoc(doc, e, event);
      if (next === undefined) await writer.delete(EXPERIMENTS, id);
      else await writer.put(EXPERIMENTS, id, next);
      if (e.type === 'ExperimentDeleted' || e.type === 'ExperimentRestored') {
        const stage = e.type === 'ExperimentDeleted' ? 'deleted' : 'active';
        for (const runId of await writer.findIds(RUNS, 'experiment_id', id)) {
          const run = await writer.get<RunDoc>(RUNS, runId);
          if (run) await writer.put(RUNS, runId, cascadeExperimentLifecycle(run, stage, event));
        }
      }
    } else if (runTypes.has(event.type)) {
      const e = event as unknown as RunEvent & RecordedEvent;
      const id = e.data.runId;
      const next = evolveRunDoc(await writer.get<RunDoc>(RUNS, id), e, event);
      if (next === undefined) await writer.delete(RUNS, id);
      else await writer.put(RUNS, id, next);
    } else if (event.type === 'MetricBatchIngested') {
      // a gRPC batch may carry several runs: each run's latest metrics move forward
      for (const series of metricSeriesOf(event)) {
        const run = await writer.get<RunDoc>(RUNS, series.runId);
        if (run)
          await writer.put(RUNS, series.runId, {
            ...run,
            metrics: latestMetricsAfterSeries(run.metrics ?? [], series),
          });
      }
    }
  },
};
