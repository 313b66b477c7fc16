import { canonicalJson, compareCodePoints } from './canonical-json.js';

describe('canonicalJson', () => {
  it('sorts keys at every depth, integer-like keys included', () => {
    expect(canonicalJson({ b: 1, 10: 'ten', 2: 'two', a: { z: [{ y: 1, x: 2 }], m: null } })).toBe(
      '{"10":"ten","2":"two","a":{"m":null,"z":[{"x":2,"y":1}]},"b":1}',
    );
  });

  it('follows JSON.stringify for values JSON cannot hold', () => {
    const value = { gone: undefined, when: new Date(0), list: [undefined, Number.NaN], n: -0 };

    expect(canonicalJson(value)).toBe(
      '{"list":[null,null],"n":0,"when":"1970-01-01T00:00:00.000Z"}',
    );
    expect(JSON.parse(canonicalJson(value))).toEqual(JSON.parse(JSON.stringify(value)));
  });
});

describe('compareCodePoints', () => {
  it('orders like UTF-8 bytes: BMP private use before astral characters', () => {
    const sorted = ['\u{1F600}', '\uFFFF', '\uE000', 'z', 'a', ''].sort(compareCodePoints);

    expect(sorted).toEqual(['', 'a', 'z', '\uE000', '\uFFFF', '\u{1F600}']);
    expect(sorted.map((s) => Buffer.from(s))).toEqual(
      sorted.map((s) => Buffer.from(s)).sort((x, y) => Buffer.compare(x, y)),
    );
  });
});
