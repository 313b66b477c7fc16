export {
  PROJECTION_RUNNER,
  RANDOM,
  READ_MODEL_LAG,
  READ_MODEL_READER,
  RUN_IDS,
  type ReadModelLag,
} from '@ledgerflow/runtime';
