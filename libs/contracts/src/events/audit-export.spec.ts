import { auditExportLine, verifyAuditExport } from './audit-export.js';
import type { RecordedEvent } from './envelope.js';
import { computeEventHash, GENESIS_HASH, hashFieldsOf } from './hash-chain.js';

function log(n: number): RecordedEvent[] {
  const out: RecordedEvent[] = [];
  let prev = GENESIS_HASH;
  for (let i = 1; i <= n; i++) {
    const base = {
      id: `e${i}`,
      stream: `model:m${i % 2}`,
      revision: Math.floor((i - 1) / 2),
      position: i,
      type: 'ModelVersionStageTransitioned',
      schemaVersion: 1,
      occurredAt: 1_700_000_000_000 + i,
      data: { name: 'm', version: i, stage: 'Production', note: 'ünïcode "q"' },
      metadata: { actor: 'alice', correlationId: `c${i}`, causationId: null, reason: 'why' },
      prevHash: prev,
      hash: '',
    };
    const hash = computeEventHash(hashFieldsOf(base));
    out.push({ ...base, hash });
    prev = hash;
  }
  return out;
}

describe('audit export (JSON Lines)', () => {
  it('verifies an intact export from the genesis', () => {
    const lines = log(6).map(auditExportLine);
    expect(verifyAuditExport(lines)).toMatchObject({
      ok: true,
      count: 6,
      fromPosition: 1,
      toPosition: 6,
      anchorHash: GENESIS_HASH,
    });
  });

  it('verifies a slice anchored on its first prev_hash', () => {
    const events = log(6);
    const lines = events.slice(2, 5).map(auditExportLine);
    expect(verifyAuditExport(lines)).toMatchObject({
      ok: true,
      count: 3,
      fromPosition: 3,
      toPosition: 5,
      anchorHash: events[1]!.hash,
      headHash: events[4]!.hash,
    });
  });

  it('names the line and event of an edited line', () => {
    const lines = log(6).map(auditExportLine);
    lines[3] = lines[3]!.replace('"actor":"alice"', '"actor":"mallory"');
    expect(verifyAuditExport(lines)).toMatchObject({
      ok: false,
      line: 4,
      position: 4,
      eventId: 'e4',
      reason: expect.stringContaining('edited') as unknown,
    });
  });

  it('names an edit to the data', () => {
    const lines = log(3).map(auditExportLine);
    lines[1] = lines[1]!.replace('"stage":"Production"', '"stage":"Archived"');
    expect(verifyAuditExport(lines)).toMatchObject({ ok: false, line: 2, eventId: 'e2' });
  });

  it('detects a removed line and a re-hashed forgery', () => {
    const lines = log(4).map(auditExportLine);
    expect(verifyAuditExport([lines[0]!, lines[2]!, lines[3]!])).toMatchObject({
      ok: false,
      line: 2,
      position: 3,
    });
    // Re-hashing an edited event is not enough: the next line's prev_hash no longer links.
    const events = log(4);
    const forged = { ...events[1]!, metadata: { ...events[1]!.metadata, actor: 'mallory' } };
    const rehashed = { ...forged, hash: computeEventHash(hashFieldsOf(forged)) };
    const tampered = [events[0]!, rehashed, events[2]!, events[3]!].map(auditExportLine);
    expect(verifyAuditExport(tampered)).toMatchObject({ ok: false, line: 3, position: 3 });
  });

  it('rejects a line that is not JSON or lacks fields', () => {
    const lines = log(2).map(auditExportLine);
    expect(verifyAuditExport([lines[0]!, '{"position":2'])).toMatchObject({
      ok: false,
      line: 2,
      reason: 'not valid JSON',
    });
    expect(verifyAuditExport(['{"position":1,"id":"x"}'])).toMatchObject({
      ok: false,
      line: 1,
      eventId: 'x',
    });
  });

  it('ignores blank lines and accepts an empty export', () => {
    expect(verifyAuditExport(['', ...log(2).map(auditExportLine), ''])).toMatchObject({
      ok: true,
      count: 2,
    });
    expect(verifyAuditExport([])).toMatchObject({ ok: true, count: 0 });
  });
});
