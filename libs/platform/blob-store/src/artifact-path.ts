import { invalidParameter, type MlflowError } from '@ledgerflow/contracts';

/** Most percent-decoding rounds before a path is refused as undecodable (MLflow's limit). */
const MAX_DECODE_ROUNDS = 10;
/** Longest accepted artifact path, in UTF-16 code units after decoding. */
const MAX_PATH_LENGTH = 4096;

function invalidPath(): MlflowError {
  return invalidParameter('Invalid path');
}

/**
 * One round of percent-decoding like Python's urllib.parse.unquote: runs of %XX become their
 * UTF-8 bytes; a malformed escape (`%zz`, a lone `%`) is left as it is instead of failing.
 */
function unquoteOnce(s: string): string {
  return s.replace(/(?:%[0-9a-fA-F]{2})+/g, (run) =>
    Buffer.from(run.replace(/%/g, ''), 'hex').toString('utf8'),
  );
}

/** Decodes until the string stops changing; more than MAX_DECODE_ROUNDS rounds is refused. */
function decodeToFixedPoint(s: string): string {
  let current = s;
  for (let round = 0; round < MAX_DECODE_ROUNDS; round++) {
    const next = unquoteOnce(current);
    if (next === current) return current;
    current = next;
  }
  throw invalidPath();
}

// C0 controls, DEL and C1 controls: never part of a legitimate artifact name.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * THE artifact path check, used by every artifact route and every blob-store adapter.
 *
 * Decodes percent-escapes to a fixed point (at most 10 rounds, as MLflow does), then refuses with
 * 400 INVALID_PARAMETER_VALUE "Invalid path" anything that could name a place outside the store's
 * root: NUL and other control characters, `#` (fragment smuggling, CVE-2024-1483), `;` (URL params,
 * CVE-2024-1593), backslashes (Windows separators, CVE-2023-2780/6909), absolute POSIX paths, drive
 * letters and `file:` URIs, and any `..` segment (CVE-2023-6730/6831, CVE-2024-1560).
 *
 * Empty and `.` segments are collapsed (`a//b/./c/` is `a/b/c`), as MLflow's filesystem join does,
 * so one stored object has one name. Returns the canonical relative path; '' is the root, which is
 * accepted only when `allowRoot` is set (listing), never for a file.
 */
export function confineArtifactPath(raw: string, options: { allowRoot?: boolean } = {}): string {
  const decoded = decodeToFixedPoint(raw);
  if (decoded.length > MAX_PATH_LENGTH) throw invalidPath();
  if (CONTROL.test(decoded)) throw invalidPath();
  if (/[#;\\]/.test(decoded)) throw invalidPath();
  if (decoded.startsWith('/')) throw invalidPath();
  if (/^[a-zA-Z]:/.test(decoded) || /^file:/i.test(decoded)) throw invalidPath();
  const segments = decoded.split('/');
  if (segments.includes('..')) throw invalidPath();
  const canonical = segments.filter((s) => s !== '' && s !== '.').join('/');
  if (canonical === '' && options.allowRoot !== true) throw invalidPath();
  return canonical;
}

/** The parent directory ('' for the root) and the last segment of a canonical path. */
export function splitArtifactPath(canonical: string): { dir: string; name: string } {
  const i = canonical.lastIndexOf('/');
  return i < 0
    ? { dir: '', name: canonical }
    : { dir: canonical.slice(0, i), name: canonical.slice(i + 1) };
}

/** Joins canonical paths ('' is the root). */
export function joinArtifactPath(...parts: readonly string[]): string {
  return parts.filter((p) => p !== '').join('/');
}
