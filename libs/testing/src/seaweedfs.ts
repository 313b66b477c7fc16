import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '../../..');
const script = path.join(repoRoot, 'infra/local/seaweedfs.sh');

/** A SeaweedFS server (S3 gateway) started for a test, on 127.0.0.1. */
export interface LocalS3 {
  readonly endpoint: string;
  readonly accessKey: string;
  readonly secretKey: string;
  readonly region: string;
  stop(): Promise<void>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** A run of `count` consecutive free ports on 127.0.0.1 (SeaweedFS needs seven). */
async function freePortBlock(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await portFree(p);
    if (ok) return base;
  }
  throw new Error('no block of free ports found for SeaweedFS');
}

/**
 * Starts SeaweedFS through infra/local/seaweedfs.sh (which builds it once from the Go module proxy
 * and caches it under ~/.cache/ledgerflow). The caller stops it; its data directory goes with it.
 */
export async function startLocalS3(): Promise<LocalS3> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-weed-'));
  const port = await freePortBlock(8);
  const { stdout } = await run('bash', [script, 'start', dataDir, String(port)], {
    timeout: 60 * 60_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const field = (name: string): string => {
    const m = new RegExp(`^${name}=(.*)$`, 'm').exec(stdout);
    if (m?.[1] === undefined) throw new Error(`seaweedfs.sh start printed no ${name}:\n${stdout}`);
    return m[1];
  };
  return {
    endpoint: field('endpoint'),
    accessKey: field('access_key'),
    secretKey: field('secret_key'),
    region: 'us-east-1',
    async stop() {
      await run('bash', [script, 'stop', dataDir]);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
