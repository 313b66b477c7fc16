import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '../../..');
const script = path.join(repoRoot, 'infra/local/nginx.sh');

/** host:port lists of the services behind the front door (see infra/local/nginx.sh). */
export interface NginxUpstreams {
  readonly tracking: string;
  readonly artifacts: string;
  readonly registry: string;
  readonly identity?: string;
  readonly deployment: string;
}

/** nginx started for a test on 127.0.0.1, routing MLflow REST paths to the given upstreams. */
export interface LocalNginx {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly runDir: string;
  stop(): Promise<void>;
}

export function freeLocalPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const address = s.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Renders infra/local/nginx.conf.template for the upstreams and starts nginx (installing it when missing). */
export async function startLocalNginx(upstreams: NginxUpstreams): Promise<LocalNginx> {
  const runDir = mkdtempSync(path.join(tmpdir(), 'ledgerflow-nginx-'));
  const port = await freeLocalPort();
  const env = {
    ...process.env,
    LEDGERFLOW_UPSTREAM_TRACKING: upstreams.tracking,
    LEDGERFLOW_UPSTREAM_ARTIFACTS: upstreams.artifacts,
    LEDGERFLOW_UPSTREAM_REGISTRY: upstreams.registry,
    LEDGERFLOW_UPSTREAM_IDENTITY: upstreams.identity ?? upstreams.registry,
    LEDGERFLOW_UPSTREAM_DEPLOYMENT: upstreams.deployment,
  };
  try {
    const { stdout } = await run('bash', [script, 'start', runDir, String(port)], {
      env,
      timeout: 10 * 60_000,
    });
    const url = /^url=(.*)$/m.exec(stdout)?.[1];
    if (url === undefined) throw new Error(`nginx.sh start printed no url:\n${stdout}`);
    return {
      url,
      runDir,
      async stop() {
        await run('bash', [script, 'stop', runDir]);
        rmSync(runDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await run('bash', [script, 'stop', runDir]).catch(() => undefined);
    rmSync(runDir, { recursive: true, force: true });
    throw error;
  }
}
