import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '../../..');
const script = path.join(repoRoot, 'infra/local/ferretdb.sh');

/** A MongoDB wire-protocol server (FerretDB, or `mongod` when the machine has one) on 127.0.0.1. */
export interface LocalMongo {
  /** `mongodb://127.0.0.1:<port>/` */
  readonly uri: string;
  readonly engine: 'ferretdb' | 'mongod';
  readonly dataDir: string;
  /** Stops the server (SIGTERM); its data stays for `startServer()`. */
  stopServer(): Promise<void>;
  /** Starts the server again on the same port and data dir. */
  startServer(): Promise<void>;
  /** Stops the server and deletes its data dir. */
  stop(): Promise<void>;
}

/**
 * The engine binary infra/local/ferretdb.sh would start, or undefined when it is not built yet.
 * Specs call this at load time to decide whether to run; it never builds (that is CI's step).
 */
export function localMongoEngine(): string | undefined {
  try {
    return execFileSync('bash', [script, 'built'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * `describe` when a MongoDB-wire engine is built, else `describe.skip` with a loud warning. With
 * LEDGERFLOW_REQUIRE_ENGINES=1 (set by .ci/run, which builds the engines first) a missing engine
 * fails the suite instead of skipping it.
 */
/* eslint-disable jest/valid-title, jest/valid-describe-callback, jest/no-disabled-tests --
   a describe wrapper: title and body are the caller's, and skipping is its point */
export function describeWithLocalMongo(name: string, body: () => void): void {
  if (localMongoEngine() !== undefined) {
    describe(name, body);
    return;
  }
  const message = `MongoDB-wire engine not built: run 'bash infra/local/ferretdb.sh build' to run "${name}"`;
  if (process.env['LEDGERFLOW_REQUIRE_ENGINES'] === '1') {
    describe(name, () => {
      it('needs the MongoDB-wire engine', () => {
        throw new Error(message);
      });
    });
    return;
  }
  console.warn(`\n!!! SKIPPED: ${message}\n`);
  describe.skip(name, body);
}
/* eslint-enable jest/valid-title, jest/valid-describe-callback, jest/no-disabled-tests */

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const address = s.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts a MongoDB-wire server through infra/local/ferretdb.sh (which builds FerretDB once from the
 * Go module proxy and caches it under ~/.cache/ledgerflow). The caller stops it.
 */
export async function startLocalMongo(): Promise<LocalMongo> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-mongo-'));
  const port = await freePort();
  const start = async (): Promise<string> => {
    const { stdout } = await run('bash', [script, 'start', dataDir, String(port)], {
      timeout: 60 * 60_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  };
  let stdout: string;
  try {
    stdout = await start();
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const field = (name: string): string => {
    const m = new RegExp(`^${name}=(.*)$`, 'm').exec(stdout);
    if (m?.[1] === undefined) throw new Error(`ferretdb.sh start printed no ${name}:\n${stdout}`);
    return m[1];
  };
  return {
    uri: field('uri'),
    engine: field('engine') === 'mongod' ? 'mongod' : 'ferretdb',
    dataDir,
    async stopServer() {
      await run('bash', [script, 'stop', dataDir]);
    },
    async startServer() {
      await start();
    },
    async stop() {
      await run('bash', [script, 'stop', dataDir]);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
