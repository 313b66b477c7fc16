import { once } from 'node:events';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startLocalNginx, type LocalNginx } from './nginx.js';

type Service = 'tracking' | 'artifacts' | 'registry' | 'identity' | 'deployment';
const SERVICES: readonly Service[] = [
  'tracking',
  'artifacts',
  'registry',
  'identity',
  'deployment',
];

/** What an upstream saw of a request. */
interface Seen {
  readonly service: Service;
  readonly method: string;
  readonly url: string;
  readonly bytes: number;
  readonly forwardedFor: string | undefined;
  readonly requestId: string | undefined;
}

let nginx: LocalNginx;
const servers = new Map<Service, Server>();
/** Called by the artifacts upstream when the first bytes of an upload arrive. */
let onFirstUploadBytes: (() => void) | undefined;

function upstream(service: Service): Server {
  return createServer((req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      if (bytes === 0) onFirstUploadBytes?.();
      bytes += chunk.length;
    });
    req.on('end', () => {
      const seen: Seen = {
        service,
        method: req.method ?? '',
        url: req.url ?? '',
        bytes,
        forwardedFor: req.headers['x-forwarded-for'] as string | undefined,
        requestId: req.headers['x-request-id'] as string | undefined,
      };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(seen));
    });
  });
}

async function send(
  method: string,
  path: string,
  body?: Buffer,
): Promise<{ status: number; json: Seen | undefined }> {
  const response = await fetch(`${nginx.url}${path}`, { method, body });
  const text = await response.text();
  return {
    status: response.status,
    json:
      response.headers.get('content-type') === 'application/json'
        ? (JSON.parse(text) as Seen)
        : undefined,
  };
}

beforeAll(async () => {
  const ports = new Map<Service, number>();
  for (const service of SERVICES) {
    const server = upstream(service);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    servers.set(service, server);
    ports.set(service, (server.address() as AddressInfo).port);
  }
  const at = (s: Service): string => `127.0.0.1:${ports.get(s)!}`;
  nginx = await startLocalNginx({
    tracking: at('tracking'),
    artifacts: at('artifacts'),
    registry: at('registry'),
    identity: at('identity'),
    deployment: at('deployment'),
  });
}, 600_000);

afterAll(async () => {
  await nginx?.stop();
  await Promise.all([...servers.values()].map((s) => new Promise((r) => s.close(r))));
});

describe('nginx front door (infra/local/nginx.sh)', () => {
  it.each<[string, string, Service]>([
    ['POST', '/api/2.0/mlflow/experiments/create', 'tracking'],
    ['GET', '/api/2.0/mlflow/runs/get?run_id=abc', 'tracking'],
    ['POST', '/api/2.0/mlflow/runs/log-batch', 'tracking'],
    ['GET', '/api/2.0/mlflow/metrics/get-history?run_id=a&metric_key=loss', 'tracking'],
    ['GET', '/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids=a', 'tracking'],
    ['GET', '/api/2.0/mlflow/logged-models/m-1', 'tracking'],
    ['GET', '/health', 'tracking'],
    ['PUT', '/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model.pkl', 'artifacts'],
    ['GET', '/ajax-api/2.0/mlflow-artifacts/artifacts?path=1', 'artifacts'],
    ['GET', '/api/2.0/mlflow/artifacts/list?run_id=abc', 'artifacts'],
    ['GET', '/get-artifact?path=a&run_uuid=b', 'artifacts'],
    ['GET', '/ajax-api/2.0/mlflow/get-artifact?path=a&run_uuid=b', 'artifacts'],
    ['GET', '/api/2.0/mlflow/model-versions/get-artifact?name=m&version=1&path=x', 'artifacts'],
    // MLflow's own route for it (the UI's): no API prefix
    ['GET', '/model-versions/get-artifact?name=m&version=1&path=x', 'artifacts'],
    [
      'GET',
      '/ajax-api/2.0/mlflow/model-versions/get-artifact?name=m&version=1&path=x',
      'artifacts',
    ],
    ['POST', '/api/2.0/mlflow/registered-models/create', 'registry'],
    ['GET', '/api/2.0/mlflow/model-versions/get?name=m&version=1', 'registry'],
    ['POST', '/api/2.0/mlflow/model-versions/transition-stage', 'registry'],
    ['POST', '/api/2.0/mlflow/transition-requests/create', 'registry'],
    ['POST', '/api/2.0/mlflow/comments/create', 'registry'],
    ['GET', '/api/2.0/ledgerflow/audit/timeline?name=m', 'registry'],
    ['GET', '/api/2.0/ledgerflow/registry/policies/get?name=m', 'registry'],
    ['POST', '/api/2.0/mlflow/users/create', 'identity'],
    ['GET', '/api/2.0/mlflow/experiments/permissions/get?experiment_id=1', 'identity'],
    ['PATCH', '/api/2.0/mlflow/registered-models/permissions/update', 'identity'],
    ['POST', '/api/2.0/ledgerflow/tokens/create', 'identity'],
    ['POST', '/invocations', 'deployment'],
    ['GET', '/ping', 'deployment'],
  ])('%s %s goes to %s, path and query unchanged', async (method, path, service) => {
    const { status, json } = await send(
      method,
      path,
      method === 'GET' ? undefined : Buffer.from('{}'),
    );
    expect(status).toBe(200);
    expect(json).toMatchObject({ service, method, url: path });
    expect(json?.forwardedFor).toBe('127.0.0.1');
    expect(json?.requestId).toMatch(/^[0-9a-f]{32}$/);
  });

  it('answers its own health check', async () => {
    const response = await fetch(`${nginx.url}/nginx-health`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('ok\n');
  });

  it('passes artifact uploads larger than the JSON limit, and refuses such JSON bodies', async () => {
    const big = Buffer.alloc(65 * 1024 * 1024, 7);
    const upload = await send('PUT', '/api/2.0/mlflow-artifacts/artifacts/big.bin', big);
    expect(upload.status).toBe(200);
    expect(upload.json).toMatchObject({ service: 'artifacts', bytes: big.length });
    const json = await send('POST', '/api/2.0/mlflow/runs/log-batch', big);
    expect(json.status).toBe(413);
  });

  it('streams an artifact upload to the service while the client is still sending it', async () => {
    const firstBytes = new Promise<void>((resolve) => (onFirstUploadBytes = resolve));
    const url = new URL(`${nginx.url}/api/2.0/mlflow-artifacts/artifacts/streamed.bin`);
    const req = request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'PUT',
      headers: { 'transfer-encoding': 'chunked' },
    });
    const response = new Promise<IncomingMessage>((resolve) => req.once('response', resolve));
    req.write(Buffer.alloc(256 * 1024, 1));
    // With request buffering, nginx would hold the body until it ends: this would never resolve.
    await firstBytes;
    onFirstUploadBytes = undefined;
    req.end(Buffer.alloc(256 * 1024, 2));
    const res = await response;
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(Buffer.concat(chunks).toString())).toMatchObject({ bytes: 512 * 1024 });
  });
});
