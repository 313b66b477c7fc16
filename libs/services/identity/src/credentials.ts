import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** scrypt cost: N=2^15, r=8, p=1 (32 MiB, tens of ms): memory-hard, as OWASP suggests. */
const N = 32768;
const R = 8;
const P = 1;
const KEY_LENGTH = 32;

function scryptAsync(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, KEY_LENGTH, { ...options, maxmem: 128 * N * R * 2 }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

/** `scrypt$N$r$p$salt$key` (salt and key base64url). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, { N, r: R, p: P });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** Checks a password against a stored hash in constant time (false for a malformed hash). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, salt, key] = parts as [string, string, string, string, string, string];
  const expected = Buffer.from(key, 'base64url');
  const actual = await scryptAsync(password, Buffer.from(salt, 'base64url'), {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** MLflow's password rule since 2.22 (CVE-2025-1474): at least 12 characters. */
export const MIN_PASSWORD_LENGTH = 12;

/** A password for the bootstrap admin: 24 random base64url characters. */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Constant-time equality of two hex digests. */
export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

const TOKEN = /^lft_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;

/** A new API token: `lft_<id>_<secret>`; only sha256(secret) is stored. */
export function newApiToken(): { tokenId: string; token: string; secretHash: string } {
  const tokenId = randomBytes(16).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { tokenId, token: `lft_${tokenId}_${secret}`, secretHash: sha256Hex(secret) };
}

/** The id and secret of a token string, or undefined when it is not one of ours. */
export function parseApiToken(token: string): { tokenId: string; secret: string } | undefined {
  const m = TOKEN.exec(token);
  return m === null ? undefined : { tokenId: m[1]!, secret: m[2]! };
}
