/** An MLflow REST error: the server's error_code and message, and the HTTP status. */
export class MlflowRestError extends Error {
  override readonly name = 'MlflowRestError';
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
  ) {
    super(`${errorCode}: ${message}`);
  }
}

type Json = Record<string, unknown>;

/** A thin wrapper over MLflow's REST API (the parts a training job needs); raw calls via `call`. */
export class RestClient {
  constructor(readonly baseUrl: string) {}

  /** Any MLflow REST call: GET sends `body` as the query string, other methods as JSON. */
  async call<T = Json>(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    body: Json = {},
  ): Promise<T> {
    let url = `${this.baseUrl.replace(/\/+$/, '')}/api/2.0/mlflow/${path}`;
    const init: RequestInit = { method, headers: {} };
    if (method === 'GET') {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(body)) {
        for (const item of Array.isArray(v) ? (v as unknown[]) : [v]) {
          if (typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean')
            q.append(k, String(item));
        }
      }
      if ([...q].length > 0) url += `?${q.toString()}`;
    } else {
      init.body = JSON.stringify(body);
      init.headers = { 'content-type': 'application/json' };
    }
    const res = await fetch(url, init);
    const text = await res.text();
    const parsed = (text ? JSON.parse(text) : {}) as Json;
    if (!res.ok) {
      const code = parsed['error_code'];
      const message = parsed['message'];
      throw new MlflowRestError(
        res.status,
        typeof code === 'string' ? code : String(res.status),
        typeof message === 'string' ? message : text,
      );
    }
    return parsed as T;
  }

  /** The id of the experiment with this name, created when absent. */
  async experimentId(name: string): Promise<string> {
    try {
      const r = await this.call<{ experiment: { experiment_id: string } }>(
        'GET',
        'experiments/get-by-name',
        { experiment_name: name },
      );
      return r.experiment.experiment_id;
    } catch (e) {
      if (!(e instanceof MlflowRestError) || e.errorCode !== 'RESOURCE_DOES_NOT_EXIST') throw e;
      return (await this.call<{ experiment_id: string }>('POST', 'experiments/create', { name }))
        .experiment_id;
    }
  }

  getRun(runId: string): Promise<{ run: Json }> {
    return this.call('GET', 'runs/get', { run_id: runId });
  }

  searchRuns(request: {
    experiment_ids: string[];
    filter?: string;
    order_by?: string[];
    max_results?: number;
    page_token?: string;
  }): Promise<{ runs?: Json[]; next_page_token?: string }> {
    return this.call('POST', 'runs/search', request);
  }

  /** Every point of one metric of a run, following page tokens. */
  async metricHistory(
    runId: string,
    key: string,
  ): Promise<{ key: string; value: number | string; timestamp: number; step: number }[]> {
    const out: { key: string; value: number | string; timestamp: number; step: number }[] = [];
    let token: string | undefined;
    do {
      const page = await this.call<{ metrics?: typeof out; next_page_token?: string }>(
        'GET',
        'metrics/get-history',
        {
          run_id: runId,
          metric_key: key,
          max_results: 25000,
          ...(token ? { page_token: token } : {}),
        },
      );
      out.push(...(page.metrics ?? []));
      token = page.next_page_token;
    } while (token);
    return out;
  }
}
