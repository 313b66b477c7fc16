import type { ByteRange } from '@ledgerflow/blob-store';

/** MLflow's text extensions (mime_type_utils.get_text_extensions): served as text/plain. */
const TEXT_EXTENSIONS = new Set([
  'txt',
  'log',
  'err',
  'cfg',
  'conf',
  'cnf',
  'cf',
  'ini',
  'properties',
  'prop',
  'hocon',
  'toml',
  'yaml',
  'yml',
  'xml',
  'json',
  'js',
  'py',
  'py3',
  'csv',
  'tsv',
  'md',
  'rst',
  'ipynb',
  'MLmodel',
  'MLproject',
]);

/** What Python's mimetypes.guess_type answers for the extensions artifacts commonly have. */
const MIME_TYPES: Readonly<Record<string, string>> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  bmp: 'image/bmp',
  svg: 'image/svg+xml',
  webp: 'image/webp',
  tif: 'image/tiff',
  tiff: 'image/tiff',
  ico: 'image/vnd.microsoft.icon',
  pdf: 'application/pdf',
  html: 'text/html',
  htm: 'text/html',
  css: 'text/css',
  zip: 'application/zip',
  tar: 'application/x-tar',
  gz: 'application/gzip',
  mp4: 'video/mp4',
  mp3: 'audio/mpeg',
  wav: 'audio/x-wav',
  wasm: 'application/wasm',
};

/** Content-Type of an artifact, guessed from its name as MLflow's _guess_mime_type does. */
export function guessMimeType(name: string): string {
  const dot = name.lastIndexOf('.');
  const ext = dot <= 0 ? name : name.slice(dot + 1);
  if (TEXT_EXTENSIONS.has(ext)) return 'text/plain';
  // mimetypes strips a compression suffix first: model.tar.gz is a tar archive.
  if (ext === 'gz' && /\.tar\.gz$/i.test(name)) return 'application/x-tar';
  return MIME_TYPES[ext.toLowerCase()] ?? 'application/octet-stream';
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** `attachment; filename=...` as MLflow builds it (RFC 6266, RFC 5987 for non-ASCII names). */
export function contentDispositionAttachment(filename: string): string {
  const quote = (v: string): string =>
    TOKEN.test(v) ? v : `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  if (/^[\x20-\x7e]*$/.test(filename)) return `attachment; filename=${quote(filename)}`;
  const fallback =
    filename
      .normalize('NFKD')
      .replace(/[^\x20-\x7e]/g, '')
      .trim() || 'download';
  const encoded = encodeURIComponent(filename).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename=${quote(fallback)}; filename*=UTF-8''${encoded}`;
}

/**
 * The one byte range of a `Range: bytes=...` header against a file of `size` bytes: undefined
 * to send the whole file (no header, several ranges, or another unit), 'unsatisfiable' for 416.
 */
export function parseRange(
  header: string | undefined,
  size: number,
): ByteRange | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (m === null) return undefined;
  const [, first = '', last = ''] = m;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (start >= size) return 'unsatisfiable';
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (end < start) return 'unsatisfiable';
  return { start, end };
}
