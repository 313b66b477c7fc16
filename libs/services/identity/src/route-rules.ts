import type { Capability } from '@ledgerflow/domain-identity';

/**
 * Where a rule finds the resource whose permission decides the call (fact sheet §7):
 * - experiment: an experiment id field (`dflt` when the handler has a default, as runs/create's "0")
 * - experiment_name: an experiment name field, resolved to its id
 * - run / runs: a run id field (or several), resolved to the run's experiment
 * - logged_model: the `model_id` path parameter, resolved to the model's experiment
 * - registered_model: a registered model name field (`absentMeansAll`: without it, admins only)
 * - artifact_path: the artifact proxy path, whose first segment is the experiment id
 * - resource_field: `resource_type` + `resource_id` fields (the permission endpoints)
 */
export type Target =
  | { readonly type: 'experiment'; readonly field: string; readonly dflt?: string }
  | { readonly type: 'experiment_name'; readonly field: string }
  | { readonly type: 'run'; readonly fields: readonly string[] }
  | { readonly type: 'runs'; readonly field: string }
  | { readonly type: 'logged_model'; readonly param: string }
  | {
      readonly type: 'registered_model';
      readonly field: string;
      /** Without the field the call covers every model (audit as-of): admins only. */
      readonly absentMeansAll?: boolean;
    }
  | { readonly type: 'artifact_path' }
  /** What a model version is registered from: `run_id`, `model_id` and the runs:/, models:/ or
   * mlflow-artifacts: `source` (so nobody registers, then downloads, what they may not read). */
  | { readonly type: 'model_source' }
  | { readonly type: 'resource_field' };

/** What happens after a successful call (the creator's grant, grants following a rename). */
export type AfterSuccess =
  | { readonly kind: 'grant_creator'; readonly resource: 'experiment' | 'registered_model' }
  | { readonly kind: 'rename_registered_model' };

export type Rule =
  /** Anyone, without credentials. */
  | { readonly kind: 'public' }
  /** Any signed-in user (searches filter their results to what the caller may read). */
  | { readonly kind: 'authenticated'; readonly after?: AfterSuccess }
  | { readonly kind: 'admin' }
  /** The user named by `field` (the caller when absent), or an admin. */
  | { readonly kind: 'self'; readonly field: string }
  | {
      readonly kind: 'resource';
      readonly capability: Capability;
      readonly target: Target;
      readonly after?: AfterSuccess;
      /** Further checks that must all pass too. */
      readonly also?: readonly { readonly capability: Capability; readonly target: Target }[];
    };

const signedIn: Rule = { kind: 'authenticated' };
const admin: Rule = { kind: 'admin' };
const self: Rule = { kind: 'self', field: 'username' };
const on = (capability: Capability, target: Target, after?: AfterSuccess): Rule =>
  after === undefined
    ? { kind: 'resource', capability, target }
    : { kind: 'resource', capability, target, after };
const experiment = (capability: Capability, dflt?: string): Rule =>
  on(capability, { type: 'experiment', field: 'experiment_id', ...(dflt ? { dflt } : {}) });
const run = (capability: Capability): Rule =>
  on(capability, { type: 'run', fields: ['run_id', 'run_uuid'] });
const loggedModel = (capability: Capability): Rule =>
  on(capability, { type: 'logged_model', param: 'model_id' });
const model = (capability: Capability, after?: AfterSuccess): Rule =>
  on(capability, { type: 'registered_model', field: 'name' }, after);
const artifact = (capability: Capability): Rule => on(capability, { type: 'artifact_path' });
const resourceManage: Rule = on('manage', { type: 'resource_field' });

/**
 * The permission rule of every route, keyed `METHOD path` with the `/api/N.0` or `/ajax-api/N.0`
 * prefix removed (the same rule covers the REST and UI mirrors of one endpoint). A route that is
 * registered but has no rule here is refused for everyone, and fails the permission matrix test.
 */
export const ROUTE_RULES: Readonly<Record<string, Rule>> = {
  // --- platform
  'GET /health': { kind: 'public' },
  // readiness probes (load balancers, orchestrators) carry no credentials
  'GET /ready': { kind: 'public' },
  // Prometheus scrapes with the credentials of any user (distributed mode serves /metrics)
  'GET /metrics': signedIn,
  'GET /version': signedIn,
  'GET /ledgerflow/audit/export': admin,
  'GET /ledgerflow/audit/timeline': model('read'),
  'GET /ledgerflow/audit/replay': model('read'),
  'GET /ledgerflow/audit/as-of': on('read', {
    type: 'registered_model',
    field: 'name',
    absentMeansAll: true,
  }),

  // --- experiments (§7: create is authentication only, the creator is granted)
  'POST /mlflow/experiments/create': {
    kind: 'authenticated',
    after: { kind: 'grant_creator', resource: 'experiment' },
  },
  'GET /mlflow/experiments/get': experiment('read'),
  'GET /mlflow/experiments/get-by-name': on('read', {
    type: 'experiment_name',
    field: 'experiment_name',
  }),
  'GET /mlflow/experiments/search': signedIn,
  'POST /mlflow/experiments/search': signedIn,
  'POST /mlflow/experiments/update': experiment('update'),
  'POST /mlflow/experiments/delete': experiment('delete'),
  'POST /mlflow/experiments/restore': experiment('delete'),
  'POST /mlflow/experiments/set-experiment-tag': experiment('update'),
  'POST /mlflow/experiments/delete-experiment-tag': experiment('update'),

  // --- runs (create-run needs update on the experiment; runs inherit their experiment's grants)
  'POST /mlflow/runs/create': experiment('update', '0'),
  'GET /mlflow/runs/get': run('read'),
  'POST /mlflow/runs/update': run('update'),
  'POST /mlflow/runs/delete': run('delete'),
  'POST /mlflow/runs/restore': run('delete'),
  'POST /mlflow/runs/set-tag': run('update'),
  'POST /mlflow/runs/delete-tag': run('update'),
  'POST /mlflow/runs/log-parameter': run('update'),
  'POST /mlflow/runs/log-metric': run('update'),
  'POST /mlflow/runs/log-batch': run('update'),
  'POST /mlflow/runs/log-model': run('update'),
  'POST /mlflow/runs/log-inputs': run('update'),
  'POST /mlflow/runs/outputs': run('update'),
  'POST /mlflow/runs/search': signedIn,
  'GET /mlflow/metrics/get-history': run('read'),
  'GET /mlflow/metrics/get-history-bulk-interval': on('read', { type: 'runs', field: 'run_ids' }),
  'GET /mlflow/metrics/get-history-bulk': on('read', { type: 'runs', field: 'run_id' }),

  // --- logged models (inherit their experiment's grants)
  'POST /mlflow/logged-models': experiment('update'),
  'POST /mlflow/logged-models/search': signedIn,
  'GET /mlflow/logged-models/:model_id': loggedModel('read'),
  'PATCH /mlflow/logged-models/:model_id': loggedModel('update'),
  'DELETE /mlflow/logged-models/:model_id': loggedModel('delete'),
  'PATCH /mlflow/logged-models/:model_id/tags': loggedModel('update'),
  'DELETE /mlflow/logged-models/:model_id/tags/:tag_key': loggedModel('update'),
  'POST /mlflow/logged-models/:model_id/params': loggedModel('update'),
  'GET /mlflow/logged-models/:model_id/artifacts/directories': loggedModel('read'),

  // --- artifacts: run-relative routes by run, the proxy by its path's experiment
  // (proxy DELETE needs MANAGE: CVE-2024-4263)
  'GET /mlflow/artifacts/list': run('read'),
  'GET /get-artifact': run('read'),
  'GET /mlflow/get-artifact': run('read'),
  'GET /model-versions/get-artifact': model('read'),
  'GET /mlflow/model-versions/get-artifact': model('read'),
  'PUT /mlflow-artifacts/artifacts/*': artifact('update'),
  'GET /mlflow-artifacts/artifacts/*': artifact('read'),
  'GET /mlflow-artifacts/artifacts': artifact('read'),
  'DELETE /mlflow-artifacts/artifacts/*': artifact('manage'),
  'POST /mlflow-artifacts/mpu/create/*': artifact('update'),
  'POST /mlflow-artifacts/mpu/complete/*': artifact('update'),
  'POST /mlflow-artifacts/mpu/abort/*': artifact('update'),

  // --- model registry (§5; permissions per registered model, versions inherit)
  'POST /mlflow/registered-models/create': {
    kind: 'authenticated',
    after: { kind: 'grant_creator', resource: 'registered_model' },
  },
  'GET /mlflow/registered-models/get': model('read'),
  'POST /mlflow/registered-models/rename': model('update', { kind: 'rename_registered_model' }),
  'PATCH /mlflow/registered-models/update': model('update'),
  'DELETE /mlflow/registered-models/delete': model('delete'),
  'GET /mlflow/registered-models/search': signedIn,
  'POST /mlflow/registered-models/get-latest-versions': model('read'),
  'GET /mlflow/registered-models/get-latest-versions': model('read'),
  'POST /mlflow/registered-models/set-tag': model('update'),
  'DELETE /mlflow/registered-models/delete-tag': model('update'),
  'POST /mlflow/registered-models/alias': model('update'),
  'DELETE /mlflow/registered-models/alias': model('delete'),
  'GET /mlflow/registered-models/alias': model('read'),
  'POST /mlflow/model-versions/create': {
    kind: 'resource',
    capability: 'update',
    target: { type: 'registered_model', field: 'name' },
    also: [{ capability: 'read', target: { type: 'model_source' } }],
  },
  'GET /mlflow/model-versions/get': model('read'),
  'PATCH /mlflow/model-versions/update': model('update'),
  'DELETE /mlflow/model-versions/delete': model('delete'),
  'GET /mlflow/model-versions/search': signedIn,
  'POST /mlflow/model-versions/transition-stage': model('update'),
  'GET /mlflow/model-versions/get-download-uri': model('read'),
  'POST /mlflow/model-versions/set-tag': model('update'),
  'DELETE /mlflow/model-versions/delete-tag': model('delete'),

  // --- registry governance: anyone who may read a model may request a transition or comment;
  // approving needs update (the governance policy then decides who may approve); policies need
  // manage (and the governance service also requires an admin). Comments are changed by id: the
  // comment decider lets only their author (or an admin) do it.
  'POST /mlflow/transition-requests/create': model('read'),
  'POST /mlflow/transition-requests/approve': model('update'),
  'POST /mlflow/transition-requests/reject': model('update'),
  'DELETE /mlflow/transition-requests/delete': model('read'),
  'GET /mlflow/transition-requests/list': model('read'),
  'POST /mlflow/comments/create': model('read'),
  'PATCH /mlflow/comments/update': signedIn,
  'DELETE /mlflow/comments/delete': signedIn,
  'GET /mlflow/comments/list': model('read'),
  'POST /ledgerflow/registry/policies/set': model('manage'),
  'GET /ledgerflow/registry/policies/get': model('read'),

  // --- MLflow's auth endpoints (§7) and the unified v3 permission endpoints of the 3.x client
  'POST /mlflow/users/create': admin,
  'GET /mlflow/users/get': self,
  'GET /mlflow/users/current': signedIn,
  'GET /mlflow/users/list': admin,
  'PATCH /mlflow/users/update-password': self,
  'PATCH /mlflow/users/update-admin': admin,
  'DELETE /mlflow/users/delete': admin,
  'POST /mlflow/experiments/permissions/create': experiment('manage'),
  'GET /mlflow/experiments/permissions/get': experiment('manage'),
  'PATCH /mlflow/experiments/permissions/update': experiment('manage'),
  'DELETE /mlflow/experiments/permissions/delete': experiment('manage'),
  'POST /mlflow/registered-models/permissions/create': model('manage'),
  'GET /mlflow/registered-models/permissions/get': model('manage'),
  'PATCH /mlflow/registered-models/permissions/update': model('manage'),
  'DELETE /mlflow/registered-models/permissions/delete': model('manage'),
  'POST /mlflow/users/permissions/grant': resourceManage,
  'POST /mlflow/users/permissions/revoke': resourceManage,
  'GET /mlflow/users/permissions/get': resourceManage,

  // --- Ledgerflow identity endpoints: API tokens (own, or any for admins) and groups (admins;
  // group grants need MANAGE on the resource)
  'POST /ledgerflow/tokens/create': self,
  'GET /ledgerflow/tokens/list': self,
  'POST /ledgerflow/tokens/revoke': signedIn,
  'POST /ledgerflow/groups/create': admin,
  'GET /ledgerflow/groups/get': admin,
  'GET /ledgerflow/groups/list': admin,
  'DELETE /ledgerflow/groups/delete': admin,
  'POST /ledgerflow/groups/add-member': admin,
  'POST /ledgerflow/groups/remove-member': admin,
  'POST /ledgerflow/groups/permissions/grant': resourceManage,
  'POST /ledgerflow/groups/permissions/revoke': resourceManage,
};

/** `/api/2.0/mlflow/x` and `/ajax-api/3.0/mlflow/x` → `/mlflow/x`. */
export function normalizeRoute(route: string): string {
  return route.replace(/^\/(?:ajax-)?api\/\d+\.\d+(?=\/)/, '');
}

export function ruleFor(method: string, route: string): Rule | undefined {
  return ROUTE_RULES[`${method} ${normalizeRoute(route)}`];
}
