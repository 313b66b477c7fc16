import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RunningServer } from '@ledgerflow/runtime';
import { auditExport } from './commands/audit.js';
import { auditVerify } from './commands/audit-verify.js';
import { startEmbeddedServer } from './commands/server.js';
import { testServerConfig } from './testing/test-config.js';

/** Captures what a CLI command function writes to stdout and stderr. */
async function capture(
  fn: () => Promise<number>,
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const w1 = process.stdout.write.bind(process.stdout);
  const w2 = process.stderr.write.bind(process.stderr);
  process.stdout.write = (chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  };
  process.stderr.write = (chunk: string | Uint8Array) => {
    err += chunk.toString();
    return true;
  };
  try {
    return { code: await fn(), out, err };
  } finally {
    process.stdout.write = w1;
    process.stderr.write = w2;
  }
}

const repoRoot = path.resolve(import.meta.dirname, '../../..');

describe('audit export and offline verify (embedded server)', () => {
  let server: RunningServer;
  let dir: string;
  let dataDir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-audit-export-'));
    dataDir = path.join(dir, 'data');
    server = await startEmbeddedServer(testServerConfig(dataDir));
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${server.url}/api/2.0/mlflow/experiments/create`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-correlation-id': `corr-${i}` },
        body: JSON.stringify({ name: `exp-${i}`, tags: [{ key: 'k', value: `v"${i}ü` }] }),
      });
      expect(res.status).toBe(200);
    }
  });

  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('streams JSON Lines over REST that match an offline export of the data dir', async () => {
    const res = await fetch(`${server.url}/api/2.0/ledgerflow/audit/export`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const rest = await res.text();
    const lines = rest.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(5);
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({ position: 1, prevHash: '0'.repeat(64) });
    expect(lines.some((l) => l.includes('"correlationId":"corr-3"'))).toBe(true);

    const file = path.join(dir, 'offline.jsonl');
    const exported = await capture(() => auditExport({ dataDir, out: file }));
    expect(exported.code).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(rest);

    const ok = await capture(() => auditVerify({ dataDir, file }));
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(
      new RegExp(`OK, ${lines.length} events \\(positions 1-${lines.length}, from the genesis\\)`),
    );
  });

  it('exports a slice by position, which verifies anchored on its first prev_hash', async () => {
    const res = await fetch(
      `${server.url}/api/2.0/ledgerflow/audit/export?from_position=2&to_position=3`,
    );
    const lines = (await res.text()).trimEnd().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { position: number }).position)).toEqual([2, 3]);
    const file = path.join(dir, 'slice.jsonl');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const ok = await capture(() => auditVerify({ dataDir, file }));
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('positions 2-3, anchored at prev_hash');

    const viaServer = path.join(dir, 'via-server.jsonl');
    const cli = await capture(() =>
      auditExport({ server: server.url, out: viaServer, from: 2, to: 3 }),
    );
    expect(cli.code).toBe(0);
    expect(readFileSync(viaServer, 'utf8')).toBe(`${lines.join('\n')}\n`);
  });

  it('refuses a bad range with INVALID_PARAMETER_VALUE', async () => {
    const res = await fetch(
      `${server.url}/api/2.0/ledgerflow/audit/export?from_position=5&to_position=2`,
    );
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error_code: 'INVALID_PARAMETER_VALUE' });
    const zero = await fetch(`${server.url}/api/2.0/ledgerflow/audit/export?from_position=0`);
    expect(zero.status).toBe(400);
  });

  it('fails verify on an export with one edited line, naming the line and the event', async () => {
    const file = path.join(dir, 'edited.jsonl');
    expect((await capture(() => auditExport({ dataDir, out: file }))).code).toBe(0);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    const target = lines.findIndex((l) => l.includes('"exp-2"'));
    expect(target).toBeGreaterThanOrEqual(0);
    const id = (JSON.parse(lines[target]!) as { id: string }).id;
    lines[target] = lines[target]!.replace('"exp-2"', '"exp-X"');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const bad = await capture(() => auditVerify({ dataDir, file }));
    expect(bad.code).toBe(1);
    expect(bad.err).toContain(`FAILED at line ${target + 1} (position ${target + 1}, event ${id})`);
    expect(bad.err).toContain('the event was edited');
  });

  it('`ledgerflow audit export` and `audit verify --file` work from the command line', () => {
    execFileSync(process.execPath, [path.join(repoRoot, 'tools/build.mjs'), '--quiet'], {
      cwd: repoRoot,
    });
    const cli = path.join(repoRoot, 'bin/ledgerflow.js');
    const file = path.join(dir, 'cli.jsonl');
    // the export reads the log read-only and never calls the server, so it may run beside it
    const exported = spawnSync(
      process.execPath,
      [cli, 'audit', 'export', '--data-dir', dataDir, '--out', file, '--from', '2'],
      { encoding: 'utf8' },
    );
    expect(exported.stderr).toMatch(/audit export: \d+ events to /);
    expect(exported.status).toBe(0);
    const ok = spawnSync(process.execPath, [cli, 'audit', 'verify', '--file', file], {
      encoding: 'utf8',
    });
    expect(ok.stdout).toContain('anchored at prev_hash');
    expect(ok.status).toBe(0);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    lines[1] = lines[1]!.replace('"occurredAt":', '"occurredAt":1');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const bad = spawnSync(process.execPath, [cli, 'audit', 'verify', '--file', file], {
      encoding: 'utf8',
    });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/FAILED at line 2 \(position 3, event [\w-]+\)/);
    const missing = spawnSync(
      process.execPath,
      [cli, 'audit', 'verify', '--file', path.join(dir, 'nope')],
      {
        encoding: 'utf8',
      },
    );
    expect(missing.status).toBe(2);
  });
});
