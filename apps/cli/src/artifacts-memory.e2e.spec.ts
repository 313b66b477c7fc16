import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { patternStream, startLocalS3 } from '@ledgerflow/testing';

const repoRoot = path.resolve(import.meta.dirname, '../../..');
const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;
const A = '/api/2.0/mlflow-artifacts/artifacts';

/** Resident set size of a process, from /proc (bytes). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}

/** Samples a process's RSS until stopped; returns the largest value seen. */
function sampleRss(pid: number): { stop(): number } {
  let peak = rssOf(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssOf(pid));
  }, 20);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssOf(pid));
    },
  };
}

function hashing(hash: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
}

function upload(base: string, p: string, body: Readable, size: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}${A}/${p}`,
      {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', 'content-length': size },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    body.pipe(req);
  });
}

function downloadSha256(base: string, p: string): Promise<{ size: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    request(`${base}${A}/${p}`, (res) => {
      const hash = createHash('sha256');
      let size = 0;
      res.on('data', (c: Buffer) => {
        hash.update(c);
        size += c.length;
      });
      res.on('end', () => resolve({ size, sha256: hash.digest('hex') }));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

/** Where the server under test keeps its artifacts: its environment, and how to stop the store. */
interface Backing {
  readonly env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * MEMORY: a 2 GiB upload and download through the HTTP artifact proxy must not grow the server's
 * resident memory by 64 MiB or more, on either adapter. The server is a child process
 * (bin/ledgerflow.js from dist), so the figure is its own RSS, sampled every 20 ms during the
 * transfers, against a baseline taken after a warm-up transfer.
 */
describe.each([
  {
    adapter: 'local folder',
    backing: async (): Promise<Backing> => ({ env: {}, stop: async () => undefined }),
  },
  {
    adapter: 'S3 (SeaweedFS)',
    backing: async (): Promise<Backing> => {
      const s3 = await startLocalS3();
      return {
        env: {
          LEDGERFLOW_ARTIFACT_STORE: 's3',
          LEDGERFLOW_S3_ENDPOINT: s3.endpoint,
          LEDGERFLOW_S3_BUCKET: 'memory',
          LEDGERFLOW_S3_ACCESS_KEY: s3.accessKey,
          LEDGERFLOW_S3_SECRET_KEY: s3.secretKey,
          LEDGERFLOW_S3_REGION: s3.region,
        },
        stop: () => s3.stop(),
      };
    },
  },
])('artifact streaming memory, $adapter (2 GiB through a child-process server)', ({ backing }) => {
  let dir: string;
  let server: ChildProcess;
  let base: string;
  let store: Backing | undefined;

  beforeAll(async () => {
    execFileSync(process.execPath, [path.join(repoRoot, 'tools/build.mjs'), '--quiet'], {
      cwd: repoRoot,
    });
    store = await backing();
    dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-memory-'));
    server = spawn(
      process.execPath,
      [
        path.join(repoRoot, 'bin/ledgerflow.js'),
        'server',
        '--port',
        '0',
        '--data-dir',
        path.join(dir, 'data'),
      ],
      {
        env: {
          ...process.env,
          ...store.env,
          LEDGERFLOW_GRPC_PORT: '0',
          LEDGERFLOW_SQLITE_SYNCHRONOUS: 'normal',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    base = await new Promise<string>((resolve, reject) => {
      let log = '';
      server.stderr!.on('data', (c: Buffer) => {
        log += c.toString();
        const m = /listening on (http:\/\/\S+),/.exec(log);
        if (m?.[1] !== undefined) resolve(m[1]);
      });
      server.once('exit', (code) => reject(new Error(`server exited with ${code}: ${log}`)));
    });
  }, 300_000);

  afterAll(async () => {
    if (server !== undefined && server.exitCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    await store?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('streams 2 GiB up and down with server RSS growth under 64 MiB', async () => {
    const pid = server.pid!;
    // Warm-up: code paths, buffers and pools reach their steady size before the baseline.
    expect(await upload(base, 'warm/up.bin', patternStream(64 * MiB, 2), 64 * MiB)).toBe(200);
    expect((await downloadSha256(base, 'warm/up.bin')).size).toBe(64 * MiB);
    const baseline = rssOf(pid);

    const size = 2 * GiB;
    const sent = createHash('sha256');
    const up = sampleRss(pid);
    expect(await upload(base, 'big/2g.bin', patternStream(size, 7).pipe(hashing(sent)), size)).toBe(
      200,
    );
    const peakUp = up.stop();
    const expected = sent.digest('hex');

    const down = sampleRss(pid);
    const got = await downloadSha256(base, 'big/2g.bin');
    const peakDown = down.stop();

    expect(got).toEqual({ size, sha256: expected });
    const growth = Math.max(peakUp, peakDown) - baseline;
    process.stderr.write(
      `artifact memory (${base}): baseline ${(baseline / MiB).toFixed(1)} MiB, peak upload ${(peakUp / MiB).toFixed(1)} MiB, peak download ${(peakDown / MiB).toFixed(1)} MiB, growth ${(growth / MiB).toFixed(1)} MiB\n`,
    );
    expect(growth).toBeLessThan(64 * MiB);
  }, 900_000);
});
