/** Ledgerflow's version, reported by /version and the CLI. */
export const LEDGERFLOW_VERSION = '0.1.0';
