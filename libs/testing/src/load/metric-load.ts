// A metric load generator that runs in its own process (so the server under test keeps its core):
//   node dist/libs/testing/src/load/metric-load.js '<MetricLoadPlan as JSON>'
// It streams the plan's points through N LedgerflowClient instances and prints one JSON line,
// a MetricLoadResult, once every point is acknowledged as durable.
import { LedgerflowClient } from '@ledgerflow/client';

/** What to send. Point (run r, key k, step s) has value metricLoadValue(r, k, s). */
export interface MetricLoadPlan {
  readonly grpcAddress: string;
  readonly runIds: readonly string[];
  readonly keys: readonly string[];
  readonly steps: number;
  readonly clients: number;
  /** Steps per block; each client sends its blocks in a shuffled order (out-of-order arrival). */
  readonly block: number;
  readonly maxBatchPoints: number;
  /** Stop after this many seconds even if steps remain (for throughput runs); 0 = no limit. */
  readonly seconds?: number;
  /** Pause between blocks, in ms, to hold a rate below the maximum (latency runs). */
  readonly pauseMs?: number;
  /** Send blocks in step order, like a training loop, instead of shuffled (throughput runs). */
  readonly sequential?: boolean;
}

export interface MetricLoadResult {
  readonly ackedPoints: number;
  readonly batches: number;
  readonly duplicates: number;
  readonly seconds: number;
  readonly pointsPerSecond: number;
  readonly ackLatencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
}

/** The deterministic value of a generated point. */
export function metricLoadValue(run: number, key: number, step: number): number {
  return run * 1e7 + key * 1e6 + step / 7;
}

function shuffled<T>(xs: T[], seed: number): T[] {
  let s = seed;
  const rand = (): number => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0
    ? 0
    : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Runs a plan in this process. */
export async function runMetricLoad(plan: MetricLoadPlan): Promise<MetricLoadResult> {
  const blocks = Array.from({ length: Math.ceil(plan.steps / plan.block) }, (_, b) => b);
  const started = performance.now();
  const deadline = plan.seconds ? started + plan.seconds * 1000 : Infinity;
  const clients = Array.from(
    { length: plan.clients },
    (_, c) =>
      new LedgerflowClient({
        grpcAddress: plan.grpcAddress,
        clientId: `load-${process.pid}-${c}`,
        maxBatchPoints: plan.maxBatchPoints,
      }),
  );
  await Promise.all(
    clients.map(async (client, c) => {
      const mine = plan.runIds
        .map((id, r) => ({ id, r }))
        .filter(({ r }) => r % plan.clients === c);
      for (const block of plan.sequential ? blocks : shuffled([...blocks], c + 1)) {
        if (performance.now() > deadline) break;
        for (const { id, r } of mine) {
          for (let k = 0; k < plan.keys.length; k++) {
            const key = plan.keys[k]!;
            for (
              let step = block * plan.block;
              step < Math.min(plan.steps, (block + 1) * plan.block);
              step++
            ) {
              client.logMetric(
                id,
                key,
                metricLoadValue(r, k, step),
                step,
                1_700_000_000_000 + step,
              );
            }
          }
        }
        await client.metrics.ready();
        if (plan.pauseMs) await new Promise((r) => setTimeout(r, plan.pauseMs));
      }
      await client.metrics.flush();
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const latencies = clients.flatMap((c) => c.metrics.ackLatenciesMs).sort((a, b) => a - b);
  const ackedPoints = clients.reduce((n, c) => n + c.metrics.stats.ackedPoints, 0);
  const result: MetricLoadResult = {
    ackedPoints,
    batches: clients.reduce((n, c) => n + c.metrics.stats.acked, 0),
    duplicates: clients.reduce((n, c) => n + c.metrics.stats.duplicates, 0),
    seconds: Number(seconds.toFixed(3)),
    pointsPerSecond: Math.round(ackedPoints / seconds),
    ackLatencyMs: {
      p50: Number(percentile(latencies, 50).toFixed(2)),
      p99: Number(percentile(latencies, 99).toFixed(2)),
      max: Number((latencies[latencies.length - 1] ?? 0).toFixed(2)),
    },
  };
  await Promise.all(clients.map((c) => c.close()));
  return result;
}

if (process.argv[1]?.endsWith('metric-load.js') && process.argv[2]) {
  const result = await runMetricLoad(JSON.parse(process.argv[2]) as MetricLoadPlan);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}
