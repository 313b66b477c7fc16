import {
  computeEventHash,
  GENESIS_HASH,
  verifyChain,
  type HashedEventFields,
} from './hash-chain.js';

function chain(n: number): { fields: HashedEventFields; hash: string }[] {
  const out: { fields: HashedEventFields; hash: string }[] = [];
  let prev = GENESIS_HASH;
  for (let i = 1; i <= n; i++) {
    const fields: HashedEventFields = {
      id: `e${i}`,
      stream: 's',
      revision: i - 1,
      position: i,
      type: 'T',
      schemaVersion: 1,
      occurredAt: 1000 + i,
      actor: 'a',
      correlationId: 'c',
      causationId: null,
      traceId: null,
      reason: null,
      dataJson: JSON.stringify({ i }),
      prevHash: prev,
    };
    const hash = computeEventHash(fields);
    out.push({ fields, hash });
    prev = hash;
  }
  return out;
}

describe('hash chain', () => {
  it('accepts an intact chain', () => {
    expect(verifyChain(chain(5))).toMatchObject({ ok: true, count: 5, headPosition: 5 });
  });

  it('names an edited event', () => {
    const c = chain(5);
    c[2] = { ...c[2]!, fields: { ...c[2]!.fields, dataJson: '{"i":99}' } };
    expect(verifyChain(c)).toMatchObject({ ok: false, position: 3, eventId: 'e3' });
  });

  it('names the position of a deleted event', () => {
    const c = chain(5);
    c.splice(1, 1);
    expect(verifyChain(c)).toMatchObject({ ok: false, position: 2 });
  });

  it('changes the hash when any header field changes', () => {
    const [first] = chain(1);
    const base = computeEventHash(first!.fields);
    expect(computeEventHash({ ...first!.fields, actor: 'b' })).not.toBe(base);
    expect(computeEventHash({ ...first!.fields, reason: 'x' })).not.toBe(base);
  });
});
