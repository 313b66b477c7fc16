import { invalidParameter } from '@ledgerflow/contracts';

const DOCS_HINT = ' See the API docs for more information about request parameters.';

function pyTypeName(v: unknown): string {
  if (v === null) return 'NoneType';
  if (Array.isArray(v)) return 'list';
  switch (typeof v) {
    case 'string':
      return 'str';
    case 'number':
      return Number.isInteger(v) ? 'int' : 'float';
    case 'boolean':
      return 'bool';
    case 'object':
      return 'dict';
    default:
      return typeof v;
  }
}

function badType(field: string, v: unknown): Error {
  return invalidParameter(
    `Invalid value ${JSON.stringify(v)} for parameter '${field}' supplied. Hint: Value was of type '${pyTypeName(v)}'.${DOCS_HINT}`,
  );
}

function missing(field: string): Error {
  return invalidParameter(`Missing value for required parameter '${field}'.${DOCS_HINT}`);
}

/** A key/value pair from a request's repeated {key, value} field. */
export interface KeyValueInput {
  readonly key: string;
  readonly value: string;
}

/**
 * One MLflow request message: the JSON body (POST, PATCH, DELETE) or the query string (GET),
 * read field by field with MLflow's coercions and its error messages. Unknown fields are ignored.
 */
export class RequestMessage {
  constructor(
    readonly raw: Readonly<Record<string, unknown>>,
    /** True for query-string messages, where every scalar arrives as a string. */
    readonly fromQuery: boolean,
  ) {}

  has(field: string): boolean {
    const v = this.raw[field];
    return v !== undefined && v !== null;
  }

  /** A string field; absent gives undefined. Numbers are accepted for string fields as MLflow does for ids. */
  optionalString(field: string): string | undefined {
    const v = this.raw[field];
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v) && this.fromQuery) return this.optionalStringFrom(field, v[v.length - 1]);
    return this.optionalStringFrom(field, v);
  }

  private optionalStringFrom(field: string, v: unknown): string {
    if (typeof v === 'string') return v;
    throw badType(field, v);
  }

  /** A required, non-empty string field. */
  requiredString(field: string): string {
    const v = this.optionalString(field);
    if (v === undefined || v === '') throw missing(field);
    return v;
  }

  /** An id field (experiment_id): numbers are turned into strings before parsing. */
  optionalId(field: string): string | undefined {
    const v = this.raw[field];
    if (typeof v === 'number' && Number.isInteger(v)) return String(v);
    return this.optionalString(field);
  }

  requiredId(field: string): string {
    const v = this.optionalId(field);
    if (v === undefined || v === '') throw missing(field);
    return v;
  }

  /** int64: a JSON number or a numeric string. */
  optionalInt(field: string): number | undefined {
    let v = this.raw[field];
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v) && this.fromQuery) v = v[v.length - 1];
    if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
    if (typeof v === 'string' && /^[+-]?\d+$/.test(v.trim())) {
      const n = Number(v);
      if (Number.isSafeInteger(n)) return n;
    }
    throw badType(field, v);
  }

  requiredInt(field: string): number {
    const v = this.optionalInt(field);
    if (v === undefined) throw missing(field);
    return v;
  }

  /** A bool: JSON true/false, or 'true'/'false' in any letter case. */
  optionalBool(field: string): boolean | undefined {
    let v = this.raw[field];
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v) && this.fromQuery) v = v[v.length - 1];
    if (typeof v === 'boolean') return v;
    if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
    if (this.fromQuery)
      throw invalidParameter(`Invalid boolean value: ${String(v)}, must be 'true' or 'false'.`);
    throw badType(field, v);
  }

  /** A repeated string field; one query-string occurrence still counts as a list. */
  stringList(field: string): string[] {
    const v = this.raw[field];
    if (v === undefined || v === null) return [];
    const list = Array.isArray(v) ? v : this.fromQuery ? [v] : undefined;
    if (list === undefined) throw badType(field, v);
    return list.map((item) => {
      if (typeof item === 'string') return item;
      if (typeof item === 'number' && Number.isFinite(item)) return String(item);
      throw badType(field, v);
    });
  }

  /** A repeated {key, value} field. Values may be absent (null) for tags; keys are required. */
  keyValues(field: string): { key: unknown; value: unknown }[] {
    const v = this.raw[field];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw badType(field, v);
    return v.map((item: unknown) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) throw badType(field, v);
      const entry = item as Record<string, unknown>;
      return { key: entry['key'], value: entry['value'] };
    });
  }

  /** A repeated object field, for callers that parse each item themselves. */
  objectList(field: string): Record<string, unknown>[] {
    const v = this.raw[field];
    if (v === undefined || v === null) return [];
    if (
      !Array.isArray(v) ||
      v.some((i) => typeof i !== 'object' || i === null || Array.isArray(i))
    ) {
      throw badType(field, v);
    }
    return v as Record<string, unknown>[];
  }

  /** An enum given by name (any case) or by number. */
  optionalEnum<T extends string>(
    field: string,
    names: readonly T[],
    numbers: Readonly<Record<number, T>>,
  ): T | undefined {
    let v = this.raw[field];
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v) && this.fromQuery) v = v[v.length - 1];
    if (typeof v === 'string') {
      const upper = v.toUpperCase();
      const byName = names.find((n) => n === upper);
      if (byName !== undefined) return byName;
      if (/^\d+$/.test(v) && numbers[Number(v)] !== undefined) return numbers[Number(v)];
    }
    if (typeof v === 'number' && numbers[v] !== undefined) return numbers[v];
    throw invalidParameter(
      `Invalid value ${JSON.stringify(v)} for parameter '${field}' supplied. Valid values are ${names.join(', ')}.`,
    );
  }
}
