export { PROJECTION_RUNNER, RANDOM, READ_MODEL_READER, RUN_IDS } from '@ledgerflow/runtime';
