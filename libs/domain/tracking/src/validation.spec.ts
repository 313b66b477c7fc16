import type { MlflowError } from '@ledgerflow/contracts';
import {
  posixNormpath,
  validateArtifactLocation,
  validateExperimentName,
  validateKey,
} from './validation.js';

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return (e as MlflowError).code;
  }
  return undefined;
};

describe('validation', () => {
  it('normalises paths as posixpath.normpath does', () => {
    expect(posixNormpath('a/../b')).toBe('b');
    expect(posixNormpath('a//b/')).toBe('a/b');
    expect(posixNormpath('//a')).toBe('//a');
    expect(posixNormpath('///a')).toBe('/a');
    expect(posixNormpath('../x')).toBe('../x');
    expect(posixNormpath('')).toBe('.');
  });

  it.each(['', '.', '/lead', 'a/../b', 'a//b', 'trail/', '..', 'bad*char', 'x'.repeat(251)])(
    'rejects the key %p',
    (key) => {
      expect(code(() => validateKey(key, 'key', 'key'))).toBe('INVALID_PARAMETER_VALUE');
    },
  );

  it.each(['loss', 'val/loss', 'épsilon', 'a b:c-d.e_f', 'x'.repeat(250)])(
    'accepts the key %p',
    (key) => {
      expect(validateKey(key, 'key', 'key')).toBe(key);
    },
  );

  it('limits experiment names', () => {
    expect(code(() => validateExperimentName(''))).toBe('INVALID_PARAMETER_VALUE');
    expect(code(() => validateExperimentName('n'.repeat(501)))).toBe('INVALID_PARAMETER_VALUE');
    expect(validateExperimentName('n'.repeat(500))).toHaveLength(500);
  });

  it.each([
    'runs:/abc',
    'http:///#/../../../etc/',
    's3://b/x;params',
    's3://b/x?a=%252e%252e',
    'file:///tmp/../etc',
    'x'.repeat(2049),
  ])('rejects the artifact location %p', (loc) => {
    expect(code(() => validateArtifactLocation(loc))).toBe('INVALID_PARAMETER_VALUE');
  });
});
