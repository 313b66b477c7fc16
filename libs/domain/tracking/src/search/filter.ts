import { invalidParameter } from '@ledgerflow/contracts';

/** Comparison operators of MLflow's search grammar. */
export type Comparator =
  | '='
  | '!='
  | '<'
  | '<='
  | '>'
  | '>='
  | 'LIKE'
  | 'ILIKE'
  | 'IN'
  | 'NOT IN'
  | 'IS NULL'
  | 'IS NOT NULL';

/** A comparison's right-hand side; null for IS NULL / IS NOT NULL. */
export type FilterValue = string | number | readonly string[] | null;

/** One `<entity>.<key> <comparator> <value>` clause. */
export interface Comparison {
  /** Canonical entity type, e.g. 'metric', 'param', 'tag', 'attribute', 'dataset'. */
  readonly entity: string;
  readonly key: string;
  readonly comparator: Comparator;
  readonly value: FilterValue;
}

/** How one entity type of a search may be filtered. */
export interface EntityRule {
  /** Keys allowed for this entity; undefined means any key. */
  readonly keys?: ReadonlyMap<string, KeyRule>;
  /** Rule for keys when `keys` is undefined. */
  readonly anyKey?: KeyRule;
}

export interface KeyRule {
  readonly canonicalKey?: string;
  readonly valueType: 'string' | 'number';
  readonly comparators: readonly Comparator[];
}

/** Filter grammar of one search endpoint: which prefixes exist and what they accept. */
export interface FilterGrammar {
  /** Prefix spelled by the user (lowercase) → canonical entity type. */
  readonly prefixes: ReadonlyMap<string, string>;
  /** Entity used when an identifier has no prefix. */
  readonly defaultEntity: string;
  readonly entities: ReadonlyMap<string, EntityRule>;
}

export const STRING_COMPARATORS: readonly Comparator[] = ['=', '!=', 'LIKE', 'ILIKE'];
export const NUMERIC_COMPARATORS: readonly Comparator[] = ['=', '!=', '<', '<=', '>', '>='];
/** Presence tests MLflow 3 allows on run params and tags. */
export const NULL_COMPARATORS: readonly Comparator[] = ['IS NULL', 'IS NOT NULL'];

type Token =
  | { readonly kind: 'ident'; readonly text: string; readonly quotedParts: boolean }
  | { readonly kind: 'string'; readonly text: string }
  | { readonly kind: 'number'; readonly text: string }
  | { readonly kind: 'op'; readonly text: string }
  | { readonly kind: 'word'; readonly text: string }
  | { readonly kind: 'lparen' }
  | { readonly kind: 'rparen' }
  | { readonly kind: 'comma' };

function fail(filter: string, detail?: string): never {
  throw invalidParameter(detail ?? `Invalid filter '${filter}'. Could not be parsed.`);
}

function readQuoted(src: string, start: number, quote: string, filter: string): [string, number] {
  let i = start + 1;
  let out = '';
  while (i < src.length) {
    const ch = src[i]!;
    if (ch === quote) {
      // SQL-style doubled quote inside a string
      if (src[i + 1] === quote) {
        out += quote;
        i += 2;
        continue;
      }
      return [out, i + 1];
    }
    if (ch === '\\' && i + 1 < src.length) {
      out += src[i + 1]!;
      i += 2;
      continue;
    }
    out += ch;
    i += 1;
  }
  return fail(filter, `Invalid filter '${filter}'. Unterminated quoted string.`);
}

function tokenize(filter: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const src = filter;
  while (i < src.length) {
    const ch = src[i]!;
    if (/\s/.test(ch)) {
      i += 1;
    } else if (ch === '(') {
      tokens.push({ kind: 'lparen' });
      i += 1;
    } else if (ch === ')') {
      tokens.push({ kind: 'rparen' });
      i += 1;
    } else if (ch === ',') {
      tokens.push({ kind: 'comma' });
      i += 1;
    } else if (ch === "'") {
      const [text, next] = readQuoted(src, i, "'", filter);
      tokens.push({ kind: 'string', text });
      i = next;
    } else if (ch === '"' || ch === '`' || /[A-Za-z_]/.test(ch)) {
      // identifier: dotted parts, each bare or quoted with backticks or double quotes
      let text = '';
      let quotedParts = false;
      let parts = 0;
      let j = i;
      for (;;) {
        parts += 1;
        const c = src[j];
        if (c === '"' || c === '`') {
          const [part, next] = readQuoted(src, j, c, filter);
          text += part;
          quotedParts = true;
          j = next;
        } else {
          const m = /^[A-Za-z0-9_]+/.exec(src.slice(j));
          if (!m) break;
          text += m[0];
          j += m[0].length;
        }
        if (src[j] === '.') {
          text += '.';
          j += 1;
          continue;
        }
        break;
      }
      // a lone double-quoted token where a value goes is a string (MLflow accepts "x" as a value)
      const prev = tokens[tokens.length - 1];
      if (
        parts === 1 &&
        ch === '"' &&
        (prev?.kind === 'op' ||
          prev?.kind === 'lparen' ||
          prev?.kind === 'comma' ||
          (prev?.kind === 'word' && (prev.text === 'LIKE' || prev.text === 'ILIKE')))
      ) {
        tokens.push({ kind: 'string', text });
      } else if (!quotedParts && /^(and|or|not|like|ilike|in|is|null)$/i.test(text)) {
        tokens.push({ kind: 'word', text: text.toUpperCase() });
      } else {
        tokens.push({ kind: 'ident', text, quotedParts });
      }
      i = j;
    } else if (/[0-9.+-]/.test(ch)) {
      const m = /^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)/.exec(src.slice(i));
      if (!m) fail(filter);
      tokens.push({ kind: 'number', text: m[0] });
      i += m[0].length;
    } else {
      const m = /^(!=|<>|<=|>=|=|<|>)/.exec(src.slice(i));
      if (!m) fail(filter, `Invalid filter '${filter}'. Unexpected character '${ch}'.`);
      tokens.push({ kind: 'op', text: m[0] === '<>' ? '!=' : m[0] });
      i += m[0].length;
    }
  }
  return tokens;
}

/** Splits an identifier into entity prefix and key using the grammar's prefixes. */
function splitIdentifier(ident: string, grammar: FilterGrammar, filter: string): [string, string] {
  const dot = ident.indexOf('.');
  if (dot > 0) {
    const prefix = ident.slice(0, dot).toLowerCase();
    const entity = grammar.prefixes.get(prefix);
    if (entity !== undefined) return [entity, ident.slice(dot + 1)];
    if (grammar.entities.get(grammar.defaultEntity)?.keys?.has(ident) !== true) {
      fail(
        filter,
        `Invalid entity type '${ident.slice(0, dot)}'. Valid values are [${[...grammar.prefixes.keys()].map((p) => `'${p}'`).join(', ')}]`,
      );
    }
  }
  return [grammar.defaultEntity, ident];
}

/**
 * Parses an MLflow search filter: comparisons joined by AND only. OR, NOT, parentheses (other than
 * an IN list) and anything unparseable are rejected with INVALID_PARAMETER_VALUE.
 */
export function parseFilter(
  filter: string | undefined | null,
  grammar: FilterGrammar,
): Comparison[] {
  if (filter === undefined || filter === null || filter.trim() === '') return [];
  const tokens = tokenize(filter);
  const out: Comparison[] = [];
  let i = 0;
  const invalidClause = (t: Token): never =>
    fail(
      filter,
      `Invalid clause(s) in filter string: '${'text' in t ? t.text : t.kind === 'lparen' ? '(' : t.kind === 'rparen' ? ')' : ','}'`,
    );
  while (i < tokens.length) {
    const identTok = tokens[i];
    if (identTok === undefined || identTok.kind !== 'ident') {
      return invalidClause(identTok ?? { kind: 'comma' });
    }
    i += 1;
    const opTok = tokens[i];
    let comparator: Comparator;
    if (opTok?.kind === 'op') {
      comparator = opTok.text as Comparator;
      i += 1;
    } else if (
      opTok?.kind === 'word' &&
      (opTok.text === 'LIKE' || opTok.text === 'ILIKE' || opTok.text === 'IN')
    ) {
      comparator = opTok.text;
      i += 1;
    } else if (
      opTok?.kind === 'word' &&
      opTok.text === 'NOT' &&
      tokens[i + 1]?.kind === 'word' &&
      (tokens[i + 1] as { text: string }).text === 'IN'
    ) {
      comparator = 'NOT IN';
      i += 2;
    } else if (opTok?.kind === 'word' && opTok.text === 'IS') {
      // `IS NULL` / `IS NOT NULL`: no value follows
      const negated =
        tokens[i + 1]?.kind === 'word' && (tokens[i + 1] as { text: string }).text === 'NOT';
      const nullTok = tokens[i + (negated ? 2 : 1)];
      if (nullTok?.kind !== 'word' || nullTok.text !== 'NULL') fail(filter);
      i += negated ? 3 : 2;
      const [entity, key] = splitIdentifier(identTok.text, grammar, filter);
      const comparator: Comparator = negated ? 'IS NOT NULL' : 'IS NULL';
      out.push(validateComparison({ entity, key, comparator, value: null }, grammar, filter));
      const after = tokens[i];
      if (after === undefined) break;
      if (after.kind === 'word' && after.text === 'AND') {
        i += 1;
        if (i >= tokens.length) fail(filter);
        continue;
      }
      return invalidClause(after);
    } else {
      return fail(
        filter,
        `Invalid comparison clause in filter '${filter}'. Expected comparison found '${opTok && 'text' in opTok ? opTok.text : ''}'`,
      );
    }
    let value: FilterValue;
    const valTok = tokens[i];
    if (comparator === 'IN' || comparator === 'NOT IN') {
      if (valTok?.kind !== 'lparen')
        fail(
          filter,
          `Invalid filter '${filter}'. ${comparator} requires a parenthesised list of quoted strings.`,
        );
      i += 1;
      const list: string[] = [];
      for (;;) {
        const t = tokens[i];
        if (t?.kind !== 'string')
          fail(filter, `Invalid filter '${filter}'. ${comparator} lists hold quoted strings only.`);
        list.push(t.text);
        i += 1;
        const sep = tokens[i];
        if (sep?.kind === 'comma') {
          i += 1;
          continue;
        }
        if (sep?.kind === 'rparen') {
          i += 1;
          break;
        }
        fail(filter);
      }
      value = list;
    } else if (valTok?.kind === 'string') {
      value = valTok.text;
      i += 1;
    } else if (valTok?.kind === 'number') {
      value = Number(valTok.text);
      i += 1;
    } else if (valTok?.kind === 'ident' && !valTok.quotedParts) {
      return fail(
        filter,
        `Invalid filter '${filter}'. Expected a quoted string value, got ${valTok.text}`,
      );
    } else {
      return fail(
        filter,
        `Invalid comparison clause in filter '${filter}'. Expected value token found '${valTok && 'text' in valTok ? valTok.text : ''}'`,
      );
    }
    const [entity, key] = splitIdentifier(identTok.text, grammar, filter);
    out.push(validateComparison({ entity, key, comparator, value }, grammar, filter));
    const next = tokens[i];
    if (next === undefined) break;
    if (next.kind === 'word' && next.text === 'AND') {
      i += 1;
      if (i >= tokens.length) fail(filter);
      continue;
    }
    return invalidClause(next);
  }
  return out;
}

function validateComparison(c: Comparison, grammar: FilterGrammar, filter: string): Comparison {
  const rule = grammar.entities.get(c.entity);
  if (rule === undefined) return fail(filter, `Invalid entity type '${c.entity}'.`);
  let keyRule: KeyRule | undefined;
  let key = c.key;
  if (rule.keys !== undefined) {
    keyRule = rule.keys.get(c.key) ?? rule.keys.get(c.key.toLowerCase());
    if (keyRule === undefined) {
      return fail(
        filter,
        `Invalid ${c.entity} key '${c.key}' specified. Valid keys are '${[...new Set([...rule.keys.values()].map((r) => r.canonicalKey))].join("', '")}'`,
      );
    }
    key = keyRule.canonicalKey ?? c.key;
  } else {
    keyRule = rule.anyKey;
  }
  if (keyRule === undefined) return fail(filter);
  if (!keyRule.comparators.includes(c.comparator)) {
    if (c.comparator === 'IS NULL' || c.comparator === 'IS NOT NULL') {
      return fail(
        filter,
        `IS NULL / IS NOT NULL is only supported for tags and params, not for '${c.entity}' '${c.key}'`,
      );
    }
    return fail(
      filter,
      `Invalid comparator '${c.comparator}' not one of '${keyRule.comparators.join("', '")}'`,
    );
  }
  if (
    c.comparator !== 'IN' &&
    c.comparator !== 'NOT IN' &&
    c.comparator !== 'IS NULL' &&
    c.comparator !== 'IS NOT NULL'
  ) {
    if (keyRule.valueType === 'number' && typeof c.value !== 'number') {
      return fail(
        filter,
        `Expected numeric value type for ${c.entity} '${c.key}'. Found '${String(c.value)}'`,
      );
    }
    if (keyRule.valueType === 'string' && typeof c.value !== 'string') {
      return fail(
        filter,
        `Expected a quoted string value for ${c.entity} '${c.key}'. Got value ${String(c.value)}`,
      );
    }
  }
  return { ...c, key };
}

const likeCache = new Map<string, RegExp>();

/** SQL LIKE: `%` any run, `_` one character; ILIKE ignores case. */
export function sqlLike(value: string, pattern: string, caseInsensitive: boolean): boolean {
  const cacheKey = `${caseInsensitive ? 'i' : 's'}:${pattern}`;
  let re = likeCache.get(cacheKey);
  if (re === undefined) {
    const body = pattern
      .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
      .replace(/%/g, '[\\s\\S]*')
      .replace(/_/g, '[\\s\\S]');
    re = new RegExp(`^${body}$`, caseInsensitive ? 'i' : '');
    if (likeCache.size > 1000) likeCache.clear();
    likeCache.set(cacheKey, re);
  }
  return re.test(value);
}

/** Evaluates one comparison against a value that may be missing (missing never matches). */
export function compareValue(actual: string | number | undefined, c: Comparison): boolean {
  if (c.comparator === 'IS NULL') return actual === undefined;
  if (c.comparator === 'IS NOT NULL') return actual !== undefined;
  if (actual === undefined) return false;
  const v = c.value;
  switch (c.comparator) {
    case '=':
      return actual === v;
    case '!=':
      return actual !== v;
    case '<':
      return typeof actual === 'number' && actual < (v as number);
    case '<=':
      return typeof actual === 'number' && actual <= (v as number);
    case '>':
      return typeof actual === 'number' && actual > (v as number);
    case '>=':
      return typeof actual === 'number' && actual >= (v as number);
    case 'LIKE':
      return sqlLike(String(actual), v as string, false);
    case 'ILIKE':
      return sqlLike(String(actual), v as string, true);
    case 'IN':
      return (v as readonly string[]).includes(String(actual));
    case 'NOT IN':
      return !(v as readonly string[]).includes(String(actual));
  }
}
