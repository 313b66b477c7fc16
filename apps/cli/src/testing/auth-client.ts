import type { RunningServer } from '@ledgerflow/runtime';

/** Basic credentials as the MLflow client sends them. */
export function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

export interface CallResult {
  status: number;
  text: string;
  json: Record<string, unknown>;
  headers: Headers;
}

/** One HTTP call to a test server with an Authorization header (or none). */
export async function call(
  server: RunningServer,
  method: string,
  path: string,
  auth: string | undefined,
  body?: unknown,
): Promise<CallResult> {
  const headers: Record<string, string> = {};
  if (auth !== undefined) headers['authorization'] = auth;
  let url = `${server.url}${path}`;
  let payload: string | undefined;
  if ((method === 'GET' || method === 'HEAD') && body !== undefined) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
      for (const item of Array.isArray(v) ? v : [v]) qs.append(k, String(item));
    }
    url += `?${qs.toString()}`;
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await fetch(url, {
    method,
    headers,
    ...(payload === undefined ? {} : { body: payload }),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = {};
  }
  return { status: res.status, text, json, headers: res.headers };
}

/**
 * A caller of `/api/2.0/<path>` on the server `server()` returns that throws unless the answer has
 * the expected status (200 unless given).
 */
export function apiCaller(
  server: () => RunningServer,
): (
  method: string,
  path: string,
  auth: string,
  body?: unknown,
  status?: number,
) => Promise<CallResult> {
  return async (method, path, auth, body, status = 200) => {
    const res = await call(server(), method, `/api/2.0/${path}`, auth, body);
    if (res.status !== status)
      throw new Error(`${method} ${path} → ${res.status} (expected ${status}): ${res.text}`);
    return res;
  };
}
