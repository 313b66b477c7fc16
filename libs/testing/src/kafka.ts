import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '../../..');
const script = path.join(repoRoot, 'infra/local/kafka.sh');

/** An Apache Kafka broker (KRaft, one node) started for a test on 127.0.0.1. */
export interface LocalKafka {
  /** `127.0.0.1:<port>`, for the `brokers` list of a client. */
  readonly brokers: string[];
  readonly dataDir: string;
  /** Controlled shutdown; topics and offsets stay in the data dir for `start()`. */
  stopBroker(): Promise<void>;
  /** SIGKILL, as a crashed broker. */
  killBroker(): Promise<void>;
  /** Starts the broker again on the same port and data dir. */
  startBroker(): Promise<void>;
  /** Stops the broker and deletes its data dir. */
  stop(): Promise<void>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/**
 * Ports below Linux's ephemeral range (32768+): a broker restarted on a port in that range can find
 * it taken by an outgoing connection's local port (its own clients reconnect while it is down).
 */
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 12_000 + 2 * Math.floor(Math.random() * 10_000);
    if ((await portFree(base)) && (await portFree(base + 1))) return base;
  }
  throw new Error('no pair of free ports found for Kafka');
}

async function runScript(args: string[]): Promise<string> {
  const { stdout } = await run('bash', [script, ...args], {
    timeout: 20 * 60_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

/**
 * Starts Kafka through infra/local/kafka.sh (which resolves the jars from Maven Central once and
 * caches them under ~/.cache/ledgerflow). The caller stops it; its data dir goes with it.
 */
export async function startLocalKafka(): Promise<LocalKafka> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-kafka-'));
  const port = await freePortPair();
  const start = async (): Promise<void> => {
    const out = await runScript(['start', dataDir, String(port), String(port + 1)]);
    if (!/^brokers=/m.test(out)) throw new Error(`kafka.sh start printed no brokers:\n${out}`);
  };
  await start();
  return {
    brokers: [`127.0.0.1:${port}`],
    dataDir,
    stopBroker: async () => void (await runScript(['stop', dataDir])),
    killBroker: async () => void (await runScript(['kill', dataDir])),
    startBroker: start,
    async stop() {
      await runScript(['stop', dataDir]);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
