import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RunningServer } from '@ledgerflow/runtime';
import { startEmbeddedServer } from './commands/server.js';
import { testServerConfig } from './testing/test-config.js';

const CANARY = 'CANARY-7f3a91: this file lies outside the artifact root';

/**
 * Hostile artifact paths: traversal in every position and encoding, separators, absolute and
 * drive paths, fragments, params, NUL and control characters, symlinks planted in the root, and
 * the shapes of MLflow's artifact CVEs (§13 of the compatibility sheet).
 */
const HOSTILE: readonly string[] = [
  '..',
  '../canary.txt',
  '../../canary.txt',
  'a/../../canary.txt',
  'a/b/../../../canary.txt',
  '0/r/artifacts/../../../../canary.txt',
  'a/..',
  '%2e%2e/canary.txt',
  '%2E%2E%2Fcanary.txt',
  '.%2e/canary.txt',
  '%2e./canary.txt',
  '..%2fcanary.txt',
  '%252e%252e%252fcanary.txt', // CVE-2023-6730
  '%252e%252e%252f%252e%252e%252fcanary.txt',
  '..%252fcanary.txt', // CVE-2024-1560 (double-encoded delete)
  '%25252e%25252e%25252fcanary.txt',
  '..\\canary.txt',
  '%5c..%5ccanary.txt', // CVE-2023-6909
  'a\\..\\..\\canary.txt', // CVE-2023-2780
  '..%255ccanary.txt',
  '%2fetc%2fpasswd',
  '%252fetc%252fpasswd',
  '%2f%2fproc%2fself%2froot%2fetc%2fpasswd', // CVE-2023-6977
  'C:/Windows/win.ini',
  'c:%5cwindows%5cwin.ini',
  'file:///etc/passwd', // CVE-2024-3573
  'file:%2f%2f%2fetc%2fpasswd',
  '%23/../../canary.txt', // CVE-2024-1483
  'x%2523/..%2f..%2fcanary.txt',
  'http:%2f%2f%2f%23%2f..%2f..%2f..%2fetc%2f',
  '%3b/../../canary.txt', // CVE-2024-1593
  'a%3bb=c/..%2f..%2fcanary.txt',
  'canary.txt%00',
  '%00',
  'a%00/../canary.txt',
  '%2500.txt',
  'a%0a',
  'a%0d%0ab',
  'a%1b%5b31m',
  'a%7f',
  'a%c2%85b',
  'link-out/canary.txt',
  'link-out',
  'link-file',
  'inside/link-file',
  'inside/link-out/canary.txt',
];

interface Answer {
  status: number;
  body: string;
}

/** Sends a request with the path exactly as written (fetch would normalise `..` away). */
function send(
  base: URL,
  method: string,
  rawPath: string,
  body?: string,
  contentType?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: base.hostname,
        port: base.port,
        method,
        path: rawPath,
        headers: body === undefined ? {} : { 'content-type': contentType ?? 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('artifact routes refuse hostile paths (embedded server)', () => {
  let server: RunningServer;
  let base: URL;
  let dir: string;
  let canaryFile: string;
  let canaryMtime: number;
  let runId: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-hostile-'));
    const dataDir = path.join(dir, 'data');
    const root = path.join(dataDir, 'artifacts');
    const outside = path.join(dir, 'outside');
    mkdirSync(path.join(root, 'inside'), { recursive: true });
    mkdirSync(outside);
    canaryFile = path.join(dir, 'canary.txt');
    writeFileSync(canaryFile, CANARY);
    writeFileSync(path.join(outside, 'canary.txt'), CANARY);
    canaryMtime = statSync(canaryFile).mtimeMs;
    symlinkSync(outside, path.join(root, 'link-out'));
    symlinkSync(canaryFile, path.join(root, 'link-file'));
    symlinkSync(canaryFile, path.join(root, 'inside', 'link-file'));
    symlinkSync(outside, path.join(root, 'inside', 'link-out'));
    server = await startEmbeddedServer(testServerConfig(dataDir));
    base = new URL(server.url);
    const created = await fetch(`${server.url}/api/2.0/mlflow/runs/create`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ experiment_id: '0' }),
    });
    runId = ((await created.json()) as { run: { info: { run_id: string } } }).run.info.run_id;
    // The same links inside the run's artifact folder, for the run-relative routes.
    const runRoot = path.join(root, '0', runId, 'artifacts');
    mkdirSync(path.join(runRoot, 'inside'), { recursive: true });
    symlinkSync(outside, path.join(runRoot, 'link-out'));
    symlinkSync(canaryFile, path.join(runRoot, 'link-file'));
    symlinkSync(canaryFile, path.join(runRoot, 'inside', 'link-file'));
    symlinkSync(outside, path.join(runRoot, 'inside', 'link-out'));
  });

  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const A = '/api/2.0/mlflow-artifacts';
  const q = (p: string): string => encodeURIComponent(p);
  const routes: readonly [string, (p: string) => [string, string, string?]][] = [
    ['PUT artifacts/<path>', (p) => ['PUT', `${A}/artifacts/${p}`, 'pwned']],
    ['GET artifacts/<path>', (p) => ['GET', `${A}/artifacts/${p}`]],
    ['DELETE artifacts/<path>', (p) => ['DELETE', `${A}/artifacts/${p}`]],
    ['GET artifacts?path=', (p) => ['GET', `${A}/artifacts?path=${q(p)}`]],
    ['GET ajax artifacts/<path>', (p) => ['GET', `/ajax-api/2.0/mlflow-artifacts/artifacts/${p}`]],
    [
      'POST mpu/create/<path>',
      (p) => ['POST', `${A}/mpu/create/${p}`, '{"path":"f.bin","num_parts":1}'],
    ],
    [
      'POST mpu/complete/<path>',
      (p) => ['POST', `${A}/mpu/complete/${p}`, '{"path":"f.bin","upload_id":"u","parts":[]}'],
    ],
    [
      'POST mpu/abort/<path>',
      (p) => ['POST', `${A}/mpu/abort/${p}`, '{"path":"f.bin","upload_id":"u"}'],
    ],
    [
      'GET mlflow/artifacts/list',
      (p) => ['GET', `/api/2.0/mlflow/artifacts/list?run_id=RUN&path=${q(p)}`],
    ],
    ['GET get-artifact', (p) => ['GET', `/get-artifact?run_id=RUN&path=${q(p)}`]],
    [
      'GET model-versions/get-artifact',
      (p) => ['GET', `/model-versions/get-artifact?name=m&version=1&path=${q(p)}`],
    ],
  ];

  it('has at least 40 hostile paths', () => {
    expect(HOSTILE.length).toBeGreaterThanOrEqual(40);
  });

  it.each(routes)('%s answers 400 to every hostile path', async (name, build) => {
    const failures: string[] = [];
    // Model versions have no artifact tree until the registry exists: links planted in a store
    // folder cannot be reached through that route, so only the path shapes apply to it.
    const paths = name.startsWith('GET model-versions')
      ? HOSTILE.filter((p) => !p.includes('link-'))
      : HOSTILE;
    for (const hostile of paths) {
      const [method, route, body] = build(hostile);
      const raw = route.replace('RUN', runId);
      const answer = await send(
        base,
        method,
        raw,
        body,
        method === 'PUT' ? 'text/plain' : undefined,
      );
      if (answer.status !== 400 || answer.body.includes('CANARY'))
        failures.push(`${method} ${raw} -> ${answer.status} ${answer.body.slice(0, 120)}`);
    }
    expect(failures).toEqual([]);
  });

  it('never read, changed or removed the canary outside the root', () => {
    expect(readFileSync(canaryFile, 'utf8')).toBe(CANARY);
    expect(statSync(canaryFile).mtimeMs).toBe(canaryMtime);
    expect(readFileSync(path.join(dir, 'outside', 'canary.txt'), 'utf8')).toBe(CANARY);
  });

  it('still serves ordinary paths', async () => {
    const put = await send(
      base,
      'PUT',
      `${A}/artifacts/0/${runId}/artifacts/ok%20file.txt`,
      'fine',
      'text/plain',
    );
    expect(put.status).toBe(200);
    const got = await send(base, 'GET', `/get-artifact?run_id=${runId}&path=ok%20file.txt`);
    expect(got).toEqual({ status: 200, body: 'fine' });
  });
});
