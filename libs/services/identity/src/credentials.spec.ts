import {
  generatePassword,
  hashPassword,
  newApiToken,
  parseApiToken,
  sameDigest,
  sha256Hex,
  verifyPassword,
} from './credentials.js';
import { LoginLimiter } from './login-limiter.js';
import { normalizeRoute, ruleFor } from './route-rules.js';

describe('passwords', () => {
  it('hashes with scrypt and a random salt, and verifies only the right password', async () => {
    const a = await hashPassword('correct horse battery');
    const b = await hashPassword('correct horse battery');
    expect(a).toMatch(/^scrypt\$32768\$8\$1\$[\w-]{22}\$[\w-]{43}$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword('correct horse battery', a)).toBe(true);
    expect(await verifyPassword('correct horse batterx', a)).toBe(false);
    expect(await verifyPassword('x', 'not-a-hash')).toBe(false);
  });

  it('generates 24-character passwords', () => {
    expect(generatePassword()).toMatch(/^[\w-]{24}$/);
    expect(generatePassword()).not.toBe(generatePassword());
  });
});

describe('API tokens', () => {
  it('are lft_<id>_<secret>, stored only as sha256 of the secret', () => {
    const { tokenId, token, secretHash } = newApiToken();
    const parsed = parseApiToken(token);
    expect(parsed?.tokenId).toBe(tokenId);
    expect(token).not.toContain(secretHash);
    expect(sameDigest(sha256Hex(parsed!.secret), secretHash)).toBe(true);
    expect(sameDigest(sha256Hex('other'), secretHash)).toBe(false);
    expect(sameDigest('', '')).toBe(false);
    for (const bad of ['', 'lft_', `lft_${tokenId}`, `${token}x`, token.replace('lft_', 'xyz_')])
      expect(parseApiToken(bad)).toBeUndefined();
  });
});

describe('LoginLimiter', () => {
  it('blocks a key after max failures within the window, until the window has passed', () => {
    let now = 1_000_000;
    const limiter = new LoginLimiter(3, 60_000, () => now);
    for (let i = 0; i < 2; i++) limiter.fail(['u']);
    expect(limiter.blockedFor(['u'])).toBe(0);
    limiter.fail(['u']);
    expect(limiter.blockedFor(['u'])).toBe(60);
    expect(limiter.blockedFor(['v'])).toBe(0);
    now += 30_000;
    expect(limiter.blockedFor(['u'])).toBe(30);
    now += 30_001;
    expect(limiter.blockedFor(['u'])).toBe(0);
  });

  it('takes back a failure counted up front for an attempt that turned out right', () => {
    const limiter = new LoginLimiter(2, 60_000, () => 5);
    limiter.fail(['u']);
    limiter.fail(['u']);
    expect(limiter.blockedFor(['u'])).toBeGreaterThan(0);
    limiter.forgive(['u']);
    expect(limiter.blockedFor(['u'])).toBe(0);
    limiter.forgive(['u', 'unknown']);
    expect(limiter.blockedFor(['u'])).toBe(0);
  });

  it('keeps at most maxKeys keys', () => {
    const limiter = new LoginLimiter(1, 60_000, () => 0, 2);
    limiter.fail(['a']);
    limiter.fail(['b']);
    limiter.fail(['c']);
    expect(limiter.blockedFor(['a'])).toBe(0);
    expect(limiter.blockedFor(['c'])).toBeGreaterThan(0);
  });
});

describe('route rules', () => {
  it('cover the REST and UI mirrors with one rule', () => {
    expect(normalizeRoute('/api/2.0/mlflow/runs/get')).toBe('/mlflow/runs/get');
    expect(normalizeRoute('/ajax-api/3.0/mlflow/users/permissions/get')).toBe(
      '/mlflow/users/permissions/get',
    );
    expect(normalizeRoute('/get-artifact')).toBe('/get-artifact');
    expect(ruleFor('GET', '/ajax-api/2.0/mlflow/runs/get')).toEqual(
      ruleFor('GET', '/api/2.0/mlflow/runs/get'),
    );
    expect(ruleFor('GET', '/health')).toEqual({ kind: 'public' });
    expect(ruleFor('POST', '/api/2.0/mlflow/no-such-route')).toBeUndefined();
  });
});
