import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import { request, type IncomingMessage } from 'node:http';
import { request as requestTls } from 'node:https';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  blobStoreConfigFromEnv,
  BlobNotFoundError,
  confineArtifactPath,
  digestOf,
  joinArtifactPath,
  openBlobStore,
} from '@ledgerflow/blob-store';
import { EVENT_LOG_FILE_NAME, SqliteEventStore } from '@ledgerflow/event-store';
import { foldArtifactManifest, type ArtifactManifest } from '@ledgerflow/service-artifacts';

const PROXY = '/api/2.0/mlflow-artifacts/artifacts';
/** Files at least this big get a progress line on a terminal. */
const PROGRESS_FROM_BYTES = 8 * 1024 * 1024;

/**
 * `ledgerflow artifacts verify`: folds the artifact events of the log into what should be stored,
 * then re-hashes every stored file. Reports files whose bytes differ from the log, files the log
 * records that are gone, and files stored without a record. Exit 0 when all match, 1 otherwise.
 */
export async function artifactsVerify(options: { dataDir: string }): Promise<number> {
  const logPath = path.join(options.dataDir, EVENT_LOG_FILE_NAME);
  if (!existsSync(logPath)) {
    process.stderr.write(`artifacts verify: no event log at ${logPath}\n`);
    return 2;
  }
  const events = new SqliteEventStore({ path: logPath, readonly: true });
  const manifest: ArtifactManifest = new Map();
  try {
    let after = 0;
    for (;;) {
      const page = await events.readAll(after, 5000);
      if (page.length === 0) break;
      foldArtifactManifest(manifest, page);
      after = page[page.length - 1]!.position;
    }
  } finally {
    await events.close();
  }
  const store = openBlobStore(blobStoreConfigFromEnv(process.env, options.dataDir));
  const problems: string[] = [];
  let checked = 0;
  let bytes = 0;
  try {
    for (const [p, expected] of [...manifest.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
      let actual;
      try {
        actual = await digestOf(await store.get(p));
      } catch (e) {
        if (e instanceof BlobNotFoundError) {
          problems.push(`MISSING  ${p} (recorded at position ${expected.position})`);
          continue;
        }
        throw e;
      }
      checked += 1;
      bytes += actual.size;
      if (actual.sha256 !== expected.sha256 || actual.size !== expected.size)
        problems.push(
          `MODIFIED ${p}: log says ${expected.size} bytes sha256 ${expected.sha256} (position ${expected.position}), stored ${actual.size} bytes sha256 ${actual.sha256}`,
        );
    }
    for await (const p of store.walk('')) {
      if (!manifest.has(p)) problems.push(`UNRECORDED ${p}`);
    }
  } finally {
    await store.close();
  }
  for (const line of problems) process.stdout.write(`${line}\n`);
  if (problems.length === 0) {
    process.stdout.write(
      `artifacts verify: OK, ${checked} files (${bytes} bytes) match the log (${store.location})\n`,
    );
    return 0;
  }
  process.stderr.write(`artifacts verify: FAILED, ${problems.length} problem(s)\n`);
  return 1;
}

/** Where the server is: --server, else MLFLOW_TRACKING_URI, else MLflow's default port. */
export function serverUrl(server: string | undefined): URL {
  return new URL(server ?? process.env['MLFLOW_TRACKING_URI'] ?? 'http://127.0.0.1:5000');
}

function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

function progress(label: string, total: number): Transform {
  let done = 0;
  let lastShown = -1;
  const show = process.stderr.isTTY && total >= PROGRESS_FROM_BYTES;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      done += chunk.length;
      const pct = Math.floor((done / total) * 100);
      if (show && pct !== lastShown) {
        lastShown = pct;
        const bar = '#'.repeat(Math.floor(pct / 4)).padEnd(25, '.');
        process.stderr.write(`\r${label} [${bar}] ${pct}% ${(done / 1048576).toFixed(0)} MiB`);
        if (done >= total) process.stderr.write('\n');
      }
      cb(null, chunk);
    },
  });
}

function send(
  url: URL,
  method: string,
  body?: { stream: Readable; size: number },
): Promise<IncomingMessage> {
  const fn = url.protocol === 'https:' ? requestTls : request;
  return new Promise((resolve, reject) => {
    const req = fn(
      url,
      {
        method,
        headers:
          body === undefined
            ? {}
            : { 'content-type': 'application/octet-stream', 'content-length': body.size },
      },
      resolve,
    );
    req.on('error', reject);
    if (body === undefined) req.end();
    else body.stream.pipe(req).on('error', reject);
  });
}

async function failOn(res: IncomingMessage, what: string): Promise<void> {
  if ((res.statusCode ?? 0) < 400) return;
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  throw new Error(
    `${what}: HTTP ${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 500)}`,
  );
}

async function drain(res: IncomingMessage): Promise<void> {
  for await (const chunk of res) void chunk;
}

/** `ledgerflow artifacts upload <local> <artifact-path>`: a file, or a directory recursively. */
export async function artifactsUpload(
  local: string,
  dest: string,
  server?: string,
): Promise<number> {
  const base = serverUrl(server);
  const target = confineArtifactPath(dest, { allowRoot: true });
  const st = await stat(local);
  const files: { file: string; rel: string }[] = [];
  if (st.isDirectory()) {
    const walk = async (dir: string, rel: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        if (e.isDirectory()) await walk(path.join(dir, e.name), joinArtifactPath(rel, e.name));
        else if (e.isFile())
          files.push({ file: path.join(dir, e.name), rel: joinArtifactPath(rel, e.name) });
      }
    };
    await walk(local, target);
  } else files.push({ file: local, rel: joinArtifactPath(target, path.basename(local)) });
  for (const { file, rel } of files) {
    const size = (await stat(file)).size;
    const body = createReadStream(file).pipe(progress(rel, size));
    const res = await send(new URL(`${PROXY}/${encodePath(rel)}`, base), 'PUT', {
      stream: body,
      size,
    });
    await failOn(res, `upload ${rel}`);
    await drain(res);
    process.stdout.write(`uploaded ${rel} (${size} bytes)\n`);
  }
  return 0;
}

interface Listed {
  path: string;
  is_dir: boolean;
  file_size?: number;
}

async function listDir(base: URL, dir: string): Promise<Listed[]> {
  const res = await send(new URL(`${PROXY}?path=${encodeURIComponent(dir)}`, base), 'GET');
  await failOn(res, `list ${dir}`);
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as { files?: Listed[] };
  return body.files ?? [];
}

/** `ledgerflow artifacts ls [artifact-path]`: one level, like MLflow's list_artifacts. */
export async function artifactsLs(dir: string | undefined, server?: string): Promise<number> {
  const base = serverUrl(server);
  const rel = confineArtifactPath(dir ?? '', { allowRoot: true });
  for (const f of await listDir(base, rel)) {
    process.stdout.write(
      f.is_dir
        ? `${joinArtifactPath(rel, f.path)}/\n`
        : `${joinArtifactPath(rel, f.path)}\t${f.file_size ?? 0}\n`,
    );
  }
  return 0;
}

async function downloadFile(base: URL, rel: string, to: string): Promise<void> {
  const res = await send(new URL(`${PROXY}/${encodePath(rel)}`, base), 'GET');
  await failOn(res, `download ${rel}`);
  await mkdir(path.dirname(to), { recursive: true });
  const size = Number(res.headers['content-length'] ?? 0);
  const tmp = `${to}.partial`;
  try {
    await pipeline(res, progress(rel, size), createWriteStream(tmp));
    await rename(tmp, to);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  process.stdout.write(`downloaded ${rel} -> ${to}\n`);
}

/** `ledgerflow artifacts download <artifact-path> [local-dir]`: a file, or a directory recursively. */
export async function artifactsDownload(
  src: string,
  localDir: string,
  server?: string,
): Promise<number> {
  const base = serverUrl(server);
  const rel = confineArtifactPath(src);
  const entries = await listDir(base, rel);
  if (entries.length === 0) {
    await downloadFile(base, rel, path.join(localDir, path.posix.basename(rel)));
    return 0;
  }
  const walk = async (dir: string, into: string): Promise<void> => {
    for (const e of await listDir(base, dir)) {
      const child = joinArtifactPath(dir, e.path);
      if (e.is_dir) await walk(child, path.join(into, e.path));
      else await downloadFile(base, child, path.join(into, e.path));
    }
  };
  await walk(rel, path.join(localDir, path.posix.basename(rel)));
  return 0;
}
