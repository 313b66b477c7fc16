import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
  openSync,
  readSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EVENT_STORE, type EventStore } from '@ledgerflow/event-store';
import type { RunningServer } from '@ledgerflow/runtime';
import { artifactsDownload, artifactsUpload } from './commands/artifacts.js';
import { startEmbeddedServer } from './commands/server.js';
import { testServerConfig } from './testing/test-config.js';

const repoRoot = path.resolve(import.meta.dirname, '../../..');
const A = '/api/2.0/mlflow-artifacts/artifacts';

describe('artifacts over the MLflow proxy (embedded server, local folder)', () => {
  let server: RunningServer;
  let dir: string;
  let dataDir: string;
  let events: EventStore;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-artifacts-'));
    dataDir = path.join(dir, 'data');
    server = await startEmbeddedServer(testServerConfig(dataDir));
    events = server.app.get<EventStore>(EVENT_STORE);
  });

  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const put = (p: string, body: string | Buffer, type = 'application/octet-stream') =>
    fetch(`${server.url}${A}/${p}`, { method: 'PUT', body, headers: { 'content-type': type } });

  async function artifactEvents(): Promise<
    { type: string; data: Record<string, unknown>; actor: string }[]
  > {
    const all = await events.readAll(0);
    return all
      .filter((e) => e.type.startsWith('Artifact'))
      .map((e) => ({
        type: e.type,
        data: e.data as Record<string, unknown>,
        actor: e.metadata.actor,
      }));
  }

  it('stores, serves with MLflow headers and ranges, lists, and deletes', async () => {
    const bytes = Buffer.from('0123456789abcdef');
    expect((await put('1/aa/artifacts/plot.png', bytes)).status).toBe(200);
    // A JSON artifact is uploaded with Content-Type application/json: still raw bytes.
    expect((await put('1/aa/artifacts/cfg.json', '{"a": 1}', 'application/json')).status).toBe(200);

    const got = await fetch(`${server.url}${A}/1/aa/artifacts/plot.png`);
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
    expect(got.headers.get('content-type')).toBe('image/png');
    expect(got.headers.get('content-disposition')).toBe('attachment; filename=plot.png');
    expect(got.headers.get('x-content-type-options')).toBe('nosniff');

    const json = await fetch(`${server.url}${A}/1/aa/artifacts/cfg.json`);
    expect(await json.text()).toBe('{"a": 1}');
    expect(json.headers.get('content-type')).toBe('text/plain');

    const part = await fetch(`${server.url}${A}/1/aa/artifacts/plot.png`, {
      headers: { range: 'bytes=4-7' },
    });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 4-7/16');
    expect(await part.text()).toBe('4567');
    const tail = await fetch(`${server.url}${A}/1/aa/artifacts/plot.png`, {
      headers: { range: 'bytes=-3' },
    });
    expect(await tail.text()).toBe('def');
    const bad = await fetch(`${server.url}${A}/1/aa/artifacts/plot.png`, {
      headers: { range: 'bytes=99-' },
    });
    expect(bad.status).toBe(416);
    expect(bad.headers.get('content-range')).toBe('bytes */16');

    const listed = await (await fetch(`${server.url}${A}?path=1/aa/artifacts`)).json();
    expect(listed).toEqual({
      files: [
        { path: 'cfg.json', is_dir: false, file_size: 8 },
        { path: 'plot.png', is_dir: false, file_size: 16 },
      ],
    });
    expect(await (await fetch(`${server.url}${A}?path=1/aa/artifacts/plot.png`)).json()).toEqual(
      {},
    );
    expect(await (await fetch(`${server.url}${A}?path=nowhere`)).json()).toEqual({});
    expect(await (await fetch(`${server.url}${A}?path=1`)).json()).toEqual({
      files: [{ path: 'aa', is_dir: true }],
    });

    expect(
      (await fetch(`${server.url}${A}/1/aa/artifacts/cfg.json`, { method: 'DELETE' })).status,
    ).toBe(200);
    expect((await fetch(`${server.url}${A}/1/aa/artifacts/cfg.json`)).status).toBe(404);
  });

  it('answers multipart requests on the local folder with 501 and MLflow message', async () => {
    const res = await fetch(`${server.url}/api/2.0/mlflow-artifacts/mpu/create/1/aa/artifacts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: '/home/me/big.bin', num_parts: 3 }),
    });
    expect(res.status).toBe(501);
    expect(await res.json()).toEqual({
      error_code: 'NOT_IMPLEMENTED',
      message: 'Multipart upload is not supported for the current artifact repository',
    });
  });

  it('records every store, overwrite and delete as an event with size, sha256, actor and run', async () => {
    const runId = 'ab'.repeat(16);
    await put(`2/${runId}/artifacts/m/w.bin`, 'v1');
    await put(`2/${runId}/artifacts/m/w.bin`, 'version 2');
    await put(`2/${runId}/artifacts/m/x.bin`, 'x');
    await fetch(`${server.url}${A}/2/${runId}/artifacts/m`, { method: 'DELETE' });
    const mine = (await artifactEvents()).filter((e) => String(e.data['path']).startsWith('2/'));
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    expect(mine).toEqual([
      {
        type: 'ArtifactStored',
        actor: 'anonymous',
        data: {
          path: `2/${runId}/artifacts/m/w.bin`,
          size: 2,
          sha256: sha('v1'),
          replaced: false,
          runId,
        },
      },
      {
        type: 'ArtifactStored',
        actor: 'anonymous',
        data: {
          path: `2/${runId}/artifacts/m/w.bin`,
          size: 9,
          sha256: sha('version 2'),
          replaced: true,
          runId,
        },
      },
      {
        type: 'ArtifactStored',
        actor: 'anonymous',
        data: {
          path: `2/${runId}/artifacts/m/x.bin`,
          size: 1,
          sha256: sha('x'),
          replaced: false,
          runId,
        },
      },
      {
        type: 'ArtifactDeleted',
        actor: 'anonymous',
        data: { path: `2/${runId}/artifacts/m`, recursive: true, runId },
      },
    ]);
    const stream = await events.readStream(`artifacts-run-${runId}`);
    expect(stream).toHaveLength(4);
  });

  it('changes nothing for a rejected upload', async () => {
    const before = (await artifactEvents()).length;
    const res = await fetch(`${server.url}${A}/%252e%252e/evil.txt`, { method: 'PUT', body: 'x' });
    expect(res.status).toBe(400);
    expect((await artifactEvents()).length).toBe(before);
  });

  it('uploads and downloads trees with the CLI commands', async () => {
    const src = path.join(dir, 'tree');
    mkdirSync(path.join(src, 'sub'), { recursive: true });
    writeFileSync(path.join(src, 'a.txt'), 'alpha');
    writeFileSync(path.join(src, 'sub', 'b.bin'), Buffer.alloc(70_000, 7));
    expect(await artifactsUpload(src, '3/cli', server.url)).toBe(0);
    const out = path.join(dir, 'out');
    expect(await artifactsDownload('3/cli', out, server.url)).toBe(0);
    expect(readFileSync(path.join(out, 'cli', 'a.txt'), 'utf8')).toBe('alpha');
    expect(
      readFileSync(path.join(out, 'cli', 'sub', 'b.bin')).equals(Buffer.alloc(70_000, 7)),
    ).toBe(true);
  });

  it('`ledgerflow artifacts verify` passes on intact bytes and reports a flipped byte', async () => {
    await put('4/tamper/artifacts/model.bin', Buffer.alloc(4096, 1));
    execFileSync(process.execPath, [path.join(repoRoot, 'tools/build.mjs'), '--quiet'], {
      cwd: repoRoot,
    });
    const cli = path.join(repoRoot, 'bin/ledgerflow.js');
    const ok = spawnSync(process.execPath, [cli, 'artifacts', 'verify', '--data-dir', dataDir], {
      encoding: 'utf8',
    });
    expect(ok.stdout).toMatch(/artifacts verify: OK, \d+ files/);
    expect(ok.status).toBe(0);

    const file = path.join(dataDir, 'artifacts', '4', 'tamper', 'artifacts', 'model.bin');
    const fd = openSync(file, 'r+');
    const one = Buffer.alloc(1);
    readSync(fd, one, 0, 1, 1000);
    writeSync(fd, Buffer.from([one[0]! ^ 0xff]), 0, 1, 1000);
    closeSync(fd);
    writeFileSync(path.join(dataDir, 'artifacts', 'planted.txt'), 'not in the log');

    const bad = spawnSync(process.execPath, [cli, 'artifacts', 'verify', '--data-dir', dataDir], {
      encoding: 'utf8',
    });
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain('MODIFIED 4/tamper/artifacts/model.bin');
    expect(bad.stdout).toContain('UNRECORDED planted.txt');
    expect(bad.stderr).toContain('artifacts verify: FAILED, 2 problem(s)');
  });
});
