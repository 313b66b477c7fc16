import {
  experimentDecider,
  experimentStream,
  runDecider,
  runStream,
  type ExperimentFacts,
  type RunState,
} from '@ledgerflow/domain-tracking';
import type { AggregateStore } from '@ledgerflow/event-store';

const NO_EXPERIMENT: ExperimentFacts = {
  exists: false,
  lifecycleStage: 'active',
  restoredAtPosition: 0,
};

/** What a decision about a run needs about its experiment, as the log says it is now. */
export async function experimentFacts(
  aggregates: AggregateStore,
  experimentId: string,
): Promise<ExperimentFacts> {
  const { state } = await aggregates.load(experimentStream(experimentId), experimentDecider);
  return {
    exists: state.exists,
    lifecycleStage: state.lifecycleStage,
    restoredAtPosition: state.restoredAtPosition,
  };
}

/** A run's current state and its experiment's facts (for an unknown run, no experiment). */
export async function runWithExperiment(
  aggregates: AggregateStore,
  runId: string,
): Promise<{ run: RunState; experiment: ExperimentFacts }> {
  const { state: run } = await aggregates.load(runStream(runId), runDecider);
  return {
    run,
    experiment: run.exists ? await experimentFacts(aggregates, run.experimentId) : NO_EXPERIMENT,
  };
}
