// Artifact throughput: upload and download MB/s of one file (1 GiB by default) through the MLflow
// artifact proxy route (PUT/GET /api/2.0/mlflow-artifacts/artifacts/<path>), on this machine, for:
//   - Ledgerflow on the local folder and on S3 (SeaweedFS started by infra/local/seaweedfs.sh);
//   - the reference `mlflow server` (PyPI, serve-artifacts, local destination);
//   - the ceiling: `cp` of the same file followed by an fsync of the copy, and a raw loopback TCP
//     socket each way (to and from a separate process);
//   - for the S3 column, the S3 server reached directly with the same client, its own ceiling;
//   - the bound of the local upload's design: a native HTTP server (bench/native/upload-sink, Go's
//     net/http, built here when `go` is on the PATH) that stores the body in a file the same way,
//     once without hashing and once with the sha256 Ledgerflow must record for every upload.
// Every figure, the ceiling's included, is the best of three (RUNS), and the load average is recorded beside
// each phase (the machine may be shared).
//   npm run build && node dist/bench/artifacts.js [--mib 1024] [--out bench/results/artifacts.json]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  createReadStream,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
  closeSync,
  fsyncSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Client } from 'minio';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Transfers per column, the ceiling's included; each column reports its best (every run is kept). */
const RUNS = 3;

function argument(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const MIB = 1024 * 1024;
const SIZE = Number(argument('mib', '1024')) * MIB;
const OUT = path.resolve(root, argument('out', 'bench/results/artifacts.json'));
const A = '/api/2.0/mlflow-artifacts/artifacts';

const mbps = (bytes: number, ms: number): number =>
  Math.round((bytes / MIB / (ms / 1000)) * 10) / 10;

/** a / b, to two places. */
const share = (a: number, b: number): number => Math.round((a / b) * 100) / 100;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitHealthy(url: string, child: ChildProcess, seconds: number): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${url}: server exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/health`)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no /health at ${url} within ${seconds} s`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  });
}

async function startLedgerflow(
  dataDir: string,
  env: Record<string, string> = {},
): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [path.join(root, 'bin/ledgerflow.js'), 'server', '--port', String(port), '--data-dir', dataDir],
    {
      env: { ...process.env, ...env, LEDGERFLOW_GRPC_PORT: '0', LEDGERFLOW_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(url, child, 120);
  return { url, child };
}

async function startMlflow(dir: string): Promise<{ url: string; child: ChildProcess }> {
  const venv = execFileSync('bash', [path.join(root, 'tools/python-env.sh')], {
    encoding: 'utf8',
  }).trim();
  const port = await freePort();
  const child = spawn(
    path.join(venv, 'bin/mlflow'),
    [
      'server',
      '--backend-store-uri',
      `sqlite:///${dir}/mlflow.db`,
      '--artifacts-destination',
      `${dir}/mlartifacts`,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
    ],
    {
      env: { ...process.env, MLFLOW_DISABLE_TELEMETRY: 'true', DO_NOT_TRACK: 'true' },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(url, child, 300);
  return { url, child };
}

/**
 * The client of every timed transfer, in a fresh process of its own (the same for every column,
 * the ceiling's included). Run inside the long-lived bench process, the same code was a third
 * slower and its figures drifted from run to run: that process takes ~1M page faults over the bench
 * (5x a fresh one), so the client measured the bench's own memory as much as the server. Prints
 * the transfer's milliseconds, timed from just before the first byte is sent or asked for.
 *   put <url> <file> <size> | get <url> <size> | sock-up <port> <file> | sock-down <port> <size>
 */
const CLIENT = `
const http = require('node:http');
const net = require('node:net');
const fs = require('node:fs');
const [mode, a, b, c] = process.argv.slice(1);
const fail = (m) => { console.error(m); process.exit(1); };
const done = (t) => console.log(String(performance.now() - t));
const MIB = 1 << 20;
if (mode === 'put') {
  const t = performance.now();
  const req = http.request(a, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': c } }, (res) => {
    res.resume();
    res.on('end', () => (res.statusCode < 300 ? done(t) : fail('PUT ' + a + ': ' + res.statusCode)));
  });
  req.on('error', (e) => fail(String(e)));
  fs.createReadStream(b, { highWaterMark: MIB }).pipe(req);
} else if (mode === 'get') {
  const t = performance.now();
  http.request(a, (res) => {
    let n = 0;
    res.on('data', (x) => (n += x.length));
    res.on('end', () => (n === Number(b) ? done(t) : fail('GET ' + a + ': ' + res.statusCode + ', ' + n + ' bytes')));
  }).on('error', (e) => fail(String(e))).end();
} else if (mode === 'sock-up') {
  const t = performance.now();
  const s = net.connect(Number(a), '127.0.0.1');
  s.on('close', () => done(t));
  fs.createReadStream(b, { highWaterMark: MIB }).pipe(s);
} else if (mode === 'sock-down') {
  const t = performance.now();
  let n = 0;
  const s = net.connect(Number(a), '127.0.0.1');
  s.on('data', (x) => (n += x.length));
  s.on('end', () => (n === Number(b) ? done(t) : fail('socket down: ' + n + ' bytes')));
}
`;

/** Runs one timed transfer in a fresh client process; its milliseconds. */
function timedClient(...args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CLIENT, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(Number(out.trim())) : reject(new Error(`client ${args[0]}: ${code}`)),
    );
  });
}

const timedPut = (url: string, file: string): Promise<number> =>
  timedClient('put', url, file, String(SIZE));

const timedGet = (url: string): Promise<number> => timedClient('get', url, String(SIZE));

/**
 * Best of RUNS transfers each way through the proxy route. Each file is deleted (through the proxy)
 * once downloaded, so the second upload writes into memory the first one freed, as the ceiling's
 * second `cp` does (see the ceiling in main).
 */
/** CPU seconds (user + system) used so far by a process and by its main thread (Linux /proc). */
function cpuSeconds(pid: number): { process: number; main: number } | undefined {
  const ticks = (stat: string): number => {
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
  };
  try {
    const hz = 100; // USER_HZ on Linux
    return {
      process: ticks(readFileSync(`/proc/${pid}/stat`, 'utf8')) / hz,
      main: ticks(readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8')) / hz,
    };
  } catch {
    return undefined;
  }
}

/** One timed upload to `url`, and the server's CPU per GiB during it when its pid is known. */
async function timedUpload(
  url: string,
  file: string,
  serverPid: number | undefined,
): Promise<{ MBps: number; cpu?: Record<string, number> }> {
  const before = serverPid === undefined ? undefined : cpuSeconds(serverPid);
  const MBps = mbps(SIZE, await timedPut(url, file));
  const after = serverPid === undefined ? undefined : cpuSeconds(serverPid);
  if (before === undefined || after === undefined) return { MBps };
  const perGiB = (s: number): number => Math.round((s / (SIZE / (1024 * MIB))) * 100) / 100;
  return {
    MBps,
    cpu: {
      server_cpu_s_per_GiB: perGiB(after.process - before.process),
      // the process's first thread: Node's event loop; Go schedules its goroutines on any thread
      main_thread_cpu_s_per_GiB: perGiB(after.main - before.main),
    },
  };
}

async function measureProxy(
  url: string,
  file: string,
  serverPid?: number,
): Promise<Record<string, unknown>> {
  const ups: number[] = [];
  const downs: number[] = [];
  const cpu: Record<string, number>[] = [];
  for (let i = 0; i < RUNS; i++) {
    const target = `${url}${A}/bench/run${i}/artifacts/big.bin`;
    const up = await timedUpload(target, file, serverPid);
    ups.push(up.MBps);
    if (up.cpu !== undefined) cpu.push(up.cpu);
    downs.push(mbps(SIZE, await timedGet(target)));
    const res = await fetch(target, { method: 'DELETE' });
    if (!res.ok) throw new Error(`DELETE ${target}: ${res.status}`);
  }
  return {
    upload_MBps: Math.max(...ups),
    download_MBps: Math.max(...downs),
    upload_runs_MBps: ups,
    download_runs_MBps: downs,
    // the server's CPU per GiB during each upload: every thread of the process (event loop,
    // hash worker, libuv pool, V8's GC helpers), and the event loop alone
    ...(cpu.length > 0 ? { upload_cpu_runs: cpu } : {}),
  };
}

/**
 * The socket's end of the ceiling, in its own process as the servers are: with `up` it reads and
 * drops everything a connection sends; with `down` it sends the file to each connection. Prints its
 * port.
 */
const SOCKET_PEER = `
const net = require('node:net');
const fs = require('node:fs');
const [mode, file] = process.argv.slice(1);
const server = net.createServer((s) => {
  if (mode === 'up') s.resume();
  else fs.createReadStream(file, { highWaterMark: 1 << 20 }).pipe(s);
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

/**
 * Raw loopback TCP: the file's bytes to a discarding server (up), and from a sending server
 * (down). Both ends run in processes of their own (until 2026-11-29 10:40Z they shared the bench's
 * event loop, which held the socket figure down).
 */
async function socketCeiling(file: string): Promise<{ up: number; down: number }> {
  const once = async (mode: 'up' | 'down'): Promise<number> => {
    const peer = spawn(process.execPath, ['-e', SOCKET_PEER, mode, file], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        peer.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
        peer.once('exit', (code) => reject(new Error(`socket peer exited with ${code}`)));
      });
      return await (mode === 'up'
        ? timedClient('sock-up', String(port), file)
        : timedClient('sock-down', String(port), String(SIZE)));
    } finally {
      peer.kill();
    }
  };
  const up = await once('up');
  const down = await once('down');
  return { up: mbps(SIZE, up), down: mbps(SIZE, down) };
}

/**
 * The bound of the local upload's design on this machine: bench/native/upload-sink, a native HTTP
 * server that stores each PUT body in a file as the local adapter does (256 KiB writes, an
 * fdatasync every 64 MiB beside them and one before the reply), with or without a sha256 of every
 * byte on a goroutine of its own. Same client, same file, best of RUNS. Undefined when `go` is not
 * installed.
 */
async function nativeUploadBound(
  work: string,
  file: string,
): Promise<Record<string, unknown> | undefined> {
  const bin = path.join(work, 'upload-sink');
  try {
    execFileSync('go', ['build', '-trimpath', '-o', bin, '.'], {
      cwd: path.join(root, 'bench/native/upload-sink'),
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  } catch (error) {
    console.error(`native upload bound skipped: go build failed (${String(error)})`);
    return undefined;
  }
  const once = async (hash: boolean): Promise<Record<string, unknown>> => {
    const dir = path.join(work, 'upload-sink-files');
    const sink = spawn(bin, ['-dir', dir, ...(hash ? ['-sha256'] : [])], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        sink.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
        sink.once('exit', (code) => reject(new Error(`upload-sink exited with ${code}`)));
      });
      const runs: { MBps: number; cpu?: Record<string, number> }[] = [];
      for (let i = 0; i < RUNS; i++)
        runs.push(await timedUpload(`http://127.0.0.1:${port}/big.bin`, file, sink.pid));
      return {
        upload_MBps: Math.max(...runs.map((r) => r.MBps)),
        upload_runs_MBps: runs.map((r) => r.MBps),
        upload_cpu_runs: runs.flatMap((r) => (r.cpu === undefined ? [] : [r.cpu])),
      };
    } finally {
      sink.kill();
    }
  };
  return { store_only: await once(false), store_and_sha256: await once(true) };
}

/**
 * The S3 server's own throughput on this machine: the same file PUT to it and read back with the
 * `minio` client the S3 adapter uses (same part size), best of RUNS. Ledgerflow's S3 adapter cannot
 * beat the server it stores into, so this is the ceiling for that column.
 */
async function s3Direct(
  endpoint: string,
  accessKey: string,
  secretKey: string,
  file: string,
): Promise<Record<string, unknown>> {
  const url = new URL(endpoint);
  const client = new Client({
    endPoint: url.hostname,
    port: Number(url.port),
    useSSL: false,
    accessKey,
    secretKey,
    pathStyle: true,
    partSize: 16 * MIB,
  });
  const bucket = 'bench-direct';
  if (!(await client.bucketExists(bucket))) await client.makeBucket(bucket);
  const ups: number[] = [];
  const downs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const key = `run${i}/big.bin`;
    let started = performance.now();
    await client.putObject(bucket, key, createReadStream(file, { highWaterMark: MIB }), SIZE);
    ups.push(mbps(SIZE, performance.now() - started));
    started = performance.now();
    const body = await client.getObject(bucket, key);
    let n = 0;
    for await (const c of body as AsyncIterable<Buffer>) n += c.length;
    if (n !== SIZE) throw new Error(`S3 direct GET: ${n} bytes`);
    downs.push(mbps(SIZE, performance.now() - started));
    await client.removeObject(bucket, key);
  }
  return {
    upload_MBps: Math.max(...ups),
    download_MBps: Math.max(...downs),
    upload_runs_MBps: ups,
    download_runs_MBps: downs,
  };
}

/**
 * The native bound against the ceiling, and Ledgerflow's local upload against the bound (the
 * share of what any server storing and hashing the body reaches on this machine).
 */
function nativeBoundRatios(
  bound: Record<string, unknown>,
  ceilingUp: number,
  local: unknown,
): Record<string, number> {
  const up = (r: unknown): number => (r as { upload_MBps: number }).upload_MBps;
  return {
    native_store_only_upload_vs_ceiling: share(up(bound['store_only']), ceilingUp),
    native_store_and_sha256_upload_vs_ceiling: share(up(bound['store_and_sha256']), ceilingUp),
    ledgerflow_local_upload_vs_native_store_and_sha256: share(
      up(local),
      up(bound['store_and_sha256']),
    ),
  };
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'ledgerflow-bench-artifacts-'));
  const file = path.join(work, 'big.bin');
  const block = Buffer.alloc(MIB);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i);
  const fd = openSync(file, 'w');
  for (let written = 0; written < SIZE; written += MIB)
    writeSync(fd, block, 0, Math.min(MIB, SIZE - written));
  // on disk before anything is timed: left dirty, the kernel writes it back ~30 s later, in the
  // middle of whichever column is running then, and that column's fsyncs queue behind it
  fsyncSync(fd);
  closeSync(fd);
  const results: Record<string, unknown> = {
    benchmark: 'artifacts',
    file_MiB: SIZE / MIB,
    machine: { cpus: os.cpus().length, node: process.version },
  };
  const loads: Record<string, number[]> = {};
  const noteLoad = (phase: string): void => {
    loads[phase] = os.loadavg().map((l) => Math.round(l * 100) / 100);
  };
  results['load_average_1_5_15'] = loads;
  try {
    noteLoad('start');
    // `cp` then an fsync of the copy alone (`sync FILE`), as the server fsyncs its own file: a bare
    // `sync` would also wait for every other process's dirty pages. The copy is removed after each
    // run, so the second run writes into the memory the first one freed, as a proxy's second
    // upload does. (On this VM memory the kernel has not touched lately is handed back to the host,
    // and the page cache writing into it costs several times more CPU, so which memory a 1 GiB
    // write lands in moves every figure here; each column sees the same.)
    const cpRuns: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const copy = path.join(work, `copy${i}.bin`);
      const started = performance.now();
      execFileSync('cp', [file, copy]);
      execFileSync('sync', [copy]);
      cpRuns.push(mbps(SIZE, performance.now() - started));
      rmSync(copy);
    }
    const socketRuns: { up: number; down: number }[] = [];
    for (let i = 0; i < RUNS; i++) socketRuns.push(await socketCeiling(file));
    const cp = Math.max(...cpRuns);
    const socket = {
      up: Math.max(...socketRuns.map((r) => r.up)),
      down: Math.max(...socketRuns.map((r) => r.down)),
    };
    results['ceiling'] = {
      cp_MBps: cp,
      socket_upload_MBps: socket.up,
      socket_download_MBps: socket.down,
      cp_runs_MBps: cpRuns,
      socket_runs_MBps: socketRuns,
    };
    noteLoad('after_ceiling');
    console.error('ceiling', results['ceiling']);

    const local = await startLedgerflow(path.join(work, 'lf-local'), {
      LEDGERFLOW_SQLITE_SYNCHRONOUS: 'normal',
    });
    try {
      results['ledgerflow_local'] = await measureProxy(local.url, file, local.child.pid);
    } finally {
      await stop(local.child);
    }
    noteLoad('after_ledgerflow_local');
    console.error('ledgerflow local', results['ledgerflow_local']);

    const bound = await nativeUploadBound(work, file);
    if (bound !== undefined) results['native_upload_bound'] = bound;
    noteLoad('after_native_upload_bound');
    console.error('native upload bound', bound);

    const weedDir = path.join(work, 'weed');
    mkdirSync(weedDir);
    const weed = execFileSync(
      'bash',
      [path.join(root, 'infra/local/seaweedfs.sh'), 'start', weedDir, String(await freePort())],
      {
        encoding: 'utf8',
      },
    );
    const field = (n: string): string => new RegExp(`^${n}=(.*)$`, 'm').exec(weed)?.[1] ?? '';
    try {
      results['seaweedfs_direct'] = await s3Direct(
        field('endpoint'),
        field('access_key'),
        field('secret_key'),
        file,
      );
      console.error('seaweedfs direct', results['seaweedfs_direct']);
      const s3 = await startLedgerflow(path.join(work, 'lf-s3'), {
        LEDGERFLOW_ARTIFACT_STORE: 's3',
        LEDGERFLOW_S3_ENDPOINT: field('endpoint'),
        LEDGERFLOW_S3_BUCKET: 'bench',
        LEDGERFLOW_S3_ACCESS_KEY: field('access_key'),
        LEDGERFLOW_S3_SECRET_KEY: field('secret_key'),
      });
      try {
        results['ledgerflow_s3_seaweedfs'] = await measureProxy(s3.url, file, s3.child.pid);
      } finally {
        await stop(s3.child);
      }
    } finally {
      execFileSync('bash', [path.join(root, 'infra/local/seaweedfs.sh'), 'stop', weedDir]);
    }
    noteLoad('after_ledgerflow_s3');
    console.error('ledgerflow s3', results['ledgerflow_s3_seaweedfs']);

    const mlDir = path.join(work, 'mlflow');
    mkdirSync(mlDir);
    const ml = await startMlflow(mlDir);
    try {
      results['mlflow_server_local'] = await measureProxy(ml.url, file);
    } finally {
      await stop(ml.child);
    }
    noteLoad('after_mlflow');
    console.error('mlflow', results['mlflow_server_local']);

    const ceilingUp = Math.min(cp, socket.up);
    const ceilingDown = socket.down;
    type Figures = { upload_MBps: number; download_MBps: number };
    const ratio = (r: unknown): Record<string, number> => {
      const m = r as Figures;
      return {
        upload_vs_ceiling: share(m.upload_MBps, ceilingUp),
        download_vs_ceiling: share(m.download_MBps, ceilingDown),
      };
    };
    const s3 = results['ledgerflow_s3_seaweedfs'] as Figures;
    const direct = results['seaweedfs_direct'] as Figures;
    results['ratios'] = {
      ceiling_upload_MBps: ceilingUp,
      ceiling_download_MBps: ceilingDown,
      ledgerflow_local: ratio(results['ledgerflow_local']),
      ledgerflow_s3_seaweedfs: ratio(s3),
      // the S3 adapter against the S3 server it stores into, reached directly with the same client
      ledgerflow_s3_vs_seaweedfs_direct: {
        upload: share(s3.upload_MBps, direct.upload_MBps),
        download: share(s3.download_MBps, direct.download_MBps),
      },
      mlflow_server_local: ratio(results['mlflow_server_local']),
      ...(bound === undefined
        ? {}
        : nativeBoundRatios(bound, ceilingUp, results['ledgerflow_local'])),
    };
    results['measured_at'] = new Date().toISOString();
    mkdirSync(path.dirname(OUT), { recursive: true });
    writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
    console.log(JSON.stringify(results, null, 2));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
