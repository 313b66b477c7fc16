import { invalidParameter } from '@ledgerflow/contracts';
import type {
  KeyValue,
  LoggedModelDatasetFilter,
  LoggedModelOrderBy,
} from '@ledgerflow/domain-tracking';
import type { RequestMessage } from '@ledgerflow/http';

function badValue(path: string, v: unknown): Error {
  return invalidParameter(`Invalid value ${JSON.stringify(v)} for parameter '${path}' supplied.`);
}

function missing(path: string): Error {
  return invalidParameter(
    `Missing value for required parameter '${path}'. See the API docs for more information about request parameters.`,
  );
}

function optionalText(v: unknown, path: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw badValue(path, v);
}

/**
 * A logged model's repeated {key, value} field (params or tags). MLflow's store validates no
 * names or lengths here; a key must still be present, since an empty key cannot be read back.
 */
export function loggedModelKeyValues(msg: RequestMessage, field: string): KeyValue[] {
  return msg.keyValues(field).map(({ key, value }, i) => {
    const k = optionalText(key, `${field}[${i}].key`);
    if (k === undefined || k === '') throw missing(`${field}[${i}].key`);
    return { key: k, value: optionalText(value, `${field}[${i}].value`) ?? '' };
  });
}

/** SearchLoggedModels.datasets entries. */
export function datasetFilters(msg: RequestMessage): LoggedModelDatasetFilter[] {
  return msg.objectList('datasets').map((d, i) => {
    const digest = optionalText(d['dataset_digest'], `datasets[${i}].dataset_digest`);
    return {
      dataset_name: optionalText(d['dataset_name'], `datasets[${i}].dataset_name`) ?? '',
      ...(digest ? { dataset_digest: digest } : {}),
    };
  });
}

/** SearchLoggedModels.order_by entries; ascending defaults to true, as in the proto. */
export function loggedModelOrderBy(msg: RequestMessage): LoggedModelOrderBy[] {
  return msg.objectList('order_by').map((o, i) => {
    const fieldName = optionalText(o['field_name'], `order_by[${i}].field_name`);
    if (!fieldName) throw missing(`order_by[${i}].field_name`);
    const asc = o['ascending'];
    if (asc !== undefined && asc !== null && typeof asc !== 'boolean')
      throw badValue(`order_by[${i}].ascending`, asc);
    const name = optionalText(o['dataset_name'], `order_by[${i}].dataset_name`);
    const digest = optionalText(o['dataset_digest'], `order_by[${i}].dataset_digest`);
    return {
      field_name: fieldName,
      ascending: asc ?? true,
      ...(name ? { dataset_name: name } : {}),
      ...(digest ? { dataset_digest: digest } : {}),
    };
  });
}

/** A {model_id, step} list of runs/outputs. */
export function modelOutputs(msg: RequestMessage): { model_id: string; step: number }[] {
  if (!msg.has('models')) throw missing('models');
  return msg.objectList('models').map((m, i) => {
    const modelId = optionalText(m['model_id'], `models[${i}].model_id`);
    if (!modelId) throw missing(`models[${i}].model_id`);
    const step = m['step'] ?? 0;
    const n = typeof step === 'string' && /^[+-]?\d+$/.test(step) ? Number(step) : step;
    if (typeof n !== 'number' || !Number.isSafeInteger(n))
      throw badValue(`models[${i}].step`, step);
    return { model_id: modelId, step: n };
  });
}
