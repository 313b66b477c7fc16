import { MlflowError } from '@ledgerflow/contracts';
import { confineArtifactPath } from './artifact-path.js';

function rejected(raw: string): boolean {
  try {
    confineArtifactPath(raw);
    return false;
  } catch (e) {
    return (
      e instanceof MlflowError &&
      e.code === 'INVALID_PARAMETER_VALUE' &&
      e.message === 'Invalid path'
    );
  }
}

describe('confineArtifactPath', () => {
  it.each([
    ['a/b/c.txt', 'a/b/c.txt'],
    ['a//b/./c/', 'a/b/c'],
    ['model%20v1/data.bin', 'model v1/data.bin'],
    ['%2561', 'a'],
    // A lone or malformed escape is a literal character, not a way out.
    ['100%zz', '100%zz'],
    ['%', '%'],
    ['50%25', '50%'],
    ['x..y/..z/z..', 'x..y/..z/z..'],
    ['über/ファイル.txt', 'über/ファイル.txt'],
  ])('accepts %j as %j', (raw, canonical) => {
    expect(confineArtifactPath(raw)).toBe(canonical);
  });

  it.each([
    '..',
    '../etc/passwd',
    'a/../../b',
    'a/..',
    '%2e%2e/x',
    '%252e%252e%252fetc',
    '%25252e%25252e/x',
    '/etc/passwd',
    '%2fetc',
    'a\\..\\b',
    '..%5c..%5cetc',
    'C:/Windows',
    'c:x',
    'file:///etc/passwd',
    'a#/../../b',
    'a;/../b',
    'a%00b',
    'a\nb',
    'a\u0085b',
    '',
    '/',
  ])('rejects %j', (raw) => {
    expect(rejected(raw)).toBe(true);
  });

  it('refuses a path that does not settle within 10 decoding rounds', () => {
    let p = '%2e';
    for (let i = 0; i < 11; i++) p = p.replace(/%/g, '%25');
    expect(rejected(p)).toBe(true);
  });

  it('accepts the root only when asked', () => {
    expect(confineArtifactPath('', { allowRoot: true })).toBe('');
    expect(confineArtifactPath('./', { allowRoot: true })).toBe('');
  });
});
