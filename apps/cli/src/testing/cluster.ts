import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { MongoEventStore, MongoReadModelStore } from '@ledgerflow/platform-mongo';
import { ProjectionRunner, SqliteReadModelStore } from '@ledgerflow/projections';
import { SERVICES } from '@ledgerflow/service-embedded';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../../../..');
const script = path.join(root, 'infra/local/cluster.sh');

/** A whole distributed cluster (infra/local/cluster.sh) on its own ports and run dir. */
export interface TestCluster {
  /** nginx: the one base URL clients use. */
  readonly url: string;
  readonly runDir: string;
  readonly mongoUri: string;
  readonly kafkaBrokers: string;
  /** tracking-ingest's gRPC metric ingest (host:port). */
  readonly ingestAddress: string;
  /**
   * Stops one service (SIGKILL when `kill`) and starts it again, with `env` added to its
   * environment for this start only; resolves once it is ready.
   */
  restartService(name: string, kill: boolean, env?: Record<string, string>): Promise<void>;
  /** Whether the service's process (its pid file) is alive. */
  serviceAlive(name: string): boolean;
  /** Runs an infra/local engine script on this cluster's data (e.g. `kafka.sh stop <dir>`). */
  engine(scriptName: string, command: string, ...args: string[]): Promise<string>;
  /** `cluster.sh up` again (starts whatever is down). */
  up(): Promise<void>;
  /** Stops everything and deletes the run dir (its logs are kept when `keepLogs`). */
  down(keepLogs?: boolean): Promise<void>;
}

/**
 * The gRPC ports of a test cluster. They stay below Linux's ephemeral port range (32768-60999):
 * a port inside it can be taken by any outgoing connection of the machine just before a service
 * binds it (CI saw registry-governance fail with EADDRINUSE on 50352). Offsets are 20 apart, so
 * one cluster's ingest port never meets the next one's service-call ports.
 */
export const clusterGrpcBase = (offset: number): number => 20260 + offset * 20;
export const clusterIngestPort = (offset: number): number => 20251 + offset * 20;

/**
 * Starts a cluster with ports offset by `offset` from cluster.sh's test defaults, so several
 * clusters (a developer's, test:distributed's python step, this spec) can coexist.
 */
export async function startTestCluster(
  offset: number,
  /** Extra environment of every process of the cluster (e.g. `LEDGERFLOW_OTLP_ENDPOINT`). */
  extraEnv: Readonly<Record<string, string>> = {},
): Promise<TestCluster> {
  const runDir = mkdtempSync(path.join(root, 'tmp', 'cluster-spec-'));
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    ...extraEnv,
    LEDGERFLOW_CLUSTER_DIR: runDir,
    LEDGERFLOW_CLUSTER_PORT: String(5300 + offset * 10),
    LEDGERFLOW_CLUSTER_SERVICE_PORT_BASE: String(5300 + offset * 10),
    LEDGERFLOW_CLUSTER_GRPC_BASE: String(clusterGrpcBase(offset)),
    LEDGERFLOW_CLUSTER_INGEST_GRPC_PORT: String(clusterIngestPort(offset)),
    LEDGERFLOW_CLUSTER_MONGO_PORT: String(27318 + offset),
    LEDGERFLOW_CLUSTER_KAFKA_PORT: String(19292 + offset * 2),
    LEDGERFLOW_CLUSTER_S3_PORT: String(18833 + offset),
    LEDGERFLOW_CLUSTER_S3_BASE_PORT: String(18933 + offset * 10),
  };
  const cluster = (...args: string[]) =>
    run('bash', [script, ...args], { env, cwd: root, maxBuffer: 16 * 1024 * 1024 });
  let stdout: string;
  try {
    ({ stdout } = await cluster('up', runDir));
  } catch (e) {
    await cluster('down', runDir).catch(() => undefined);
    throw e;
  }
  const url = /^url=(\S+)$/m.exec(stdout)?.[1];
  if (url === undefined) throw new Error(`cluster.sh up printed no url:\n${stdout}`);
  return {
    url,
    runDir,
    mongoUri: `mongodb://127.0.0.1:${env['LEDGERFLOW_CLUSTER_MONGO_PORT']}/`,
    kafkaBrokers: `127.0.0.1:${env['LEDGERFLOW_CLUSTER_KAFKA_PORT']}`,
    ingestAddress: `127.0.0.1:${env['LEDGERFLOW_CLUSTER_INGEST_GRPC_PORT']}`,
    async restartService(name, kill, extraEnv = {}) {
      await run('bash', [script, 'restart-service', name, runDir], {
        env: { ...env, ...extraEnv, KILL: kill ? '1' : '0' },
        cwd: root,
      });
    },
    serviceAlive(name) {
      try {
        const pid = Number(readFileSync(path.join(runDir, 'pids', `${name}.pid`), 'utf8').trim());
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    },
    async engine(scriptName, command, ...args) {
      const sub = { 'ferretdb.sh': 'mongo', 'kafka.sh': 'kafka', 'seaweedfs.sh': 's3' }[scriptName];
      if (sub === undefined) throw new Error(`unknown engine script ${scriptName}`);
      const { stdout: out } = await run(
        'bash',
        [path.join(root, 'infra/local', scriptName), command, path.join(runDir, sub), ...args],
        { env, cwd: root },
      );
      return out;
    },
    async up() {
      await cluster('up', runDir);
    },
    async down(keepLogs = false) {
      await cluster('down', runDir).catch(() => undefined);
      if (keepLogs) {
        const kept = `${runDir}-logs`;
        cpSync(path.join(runDir, 'logs'), kept, { recursive: true });
        // the engines' own logs too (a reconnect problem shows on both sides)
        for (const [from, to] of [
          ['mongo/server.log', 'mongo-server.log'],
          ['kafka/kafka.log', 'kafka.log'],
        ] as const) {
          if (existsSync(path.join(runDir, from)))
            cpSync(path.join(runDir, from), path.join(kept, to));
        }
        console.error(`cluster logs kept in ${kept}`);
      }
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}

/**
 * Per read model of every service: the content hash of the live MongoDB read model, and the hash
 * of an embedded replay (SQLite read-model store, fresh) of the same service's log. They must be
 * equal: no event lost or applied twice.
 */
export async function compareWithEmbeddedReplay(
  mongoUri: string,
): Promise<{ name: string; live: string; replay: string; events: number }[]> {
  const out: { name: string; live: string; replay: string; events: number }[] = [];
  for (const spec of Object.values(SERVICES)) {
    if (spec.projections.length === 0) continue;
    const database = `ledgerflow_${spec.name.replace(/-/g, '_')}`;
    const events = await MongoEventStore.open({ uri: mongoUri, database });
    const live = await MongoReadModelStore.open({ uri: mongoUri, database });
    const dir = mkdtempSync(path.join(root, 'tmp', 'replay-'));
    const replay = new SqliteReadModelStore({ path: path.join(dir, 'read-models.db') });
    try {
      const head = await events.headPosition();
      const runner = new ProjectionRunner({
        eventStore: events,
        readModels: replay,
        projections: spec.projections,
      });
      await runner.start();
      await runner.waitFor(head);
      await runner.stop();
      for (const projection of spec.projections) {
        const checkpoint = await live.checkpoint(projection.name);
        out.push({
          name: `${spec.name}/${projection.name}@${checkpoint.position}/${head}`,
          live: await live.contentHash(projection),
          replay: await replay.contentHash(projection),
          events: head,
        });
      }
    } finally {
      await replay.close();
      await live.close();
      await events.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return out;
}
