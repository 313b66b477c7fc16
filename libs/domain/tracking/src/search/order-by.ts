import { invalidParameter } from '@ledgerflow/contracts';

export interface OrderByClause {
  /** Canonical entity type ('attribute', 'metric', 'param', 'tag'). */
  readonly entity: string;
  readonly key: string;
  readonly ascending: boolean;
}

/** Which order_by keys a search accepts. */
export interface OrderByGrammar {
  readonly prefixes: ReadonlyMap<string, string>;
  readonly defaultEntity: string;
  /** Allowed attribute keys (spelled → canonical); other entities accept any key. */
  readonly attributes: ReadonlyMap<string, string>;
}

function unquote(s: string): string {
  const m = /^([`"])(.*)\1$/.exec(s);
  return m ? m[2]! : s;
}

/** Parses `<key> [ASC|DESC]` clauses; a duplicate key or unknown attribute gives 400. */
export function parseOrderBy(
  clauses: readonly string[] | undefined,
  grammar: OrderByGrammar,
): OrderByClause[] {
  const out: OrderByClause[] = [];
  const seen = new Set<string>();
  for (const raw of clauses ?? []) {
    const m =
      /^\s*((?:`[^`]*`|"[^"]*"|[\w]+)(?:\.(?:`[^`]*`|"[^"]*"|[^\s]+))?)(?:\s+(asc|desc))?\s*$/i.exec(
        raw,
      );
    if (!m) throw invalidParameter(`Invalid order_by clause '${raw}'. Could not be parsed.`);
    const ident = m[1]!;
    const ascending = (m[2] ?? 'asc').toLowerCase() === 'asc';
    let entity = grammar.defaultEntity;
    let key = unquote(ident);
    const dot = ident.indexOf('.');
    if (dot > 0 && !ident.startsWith('`') && !ident.startsWith('"')) {
      const prefix = ident.slice(0, dot).toLowerCase();
      const mapped = grammar.prefixes.get(prefix);
      if (mapped === undefined)
        throw invalidParameter(`Invalid order_by entity type '${ident.slice(0, dot)}'`);
      entity = mapped;
      key = unquote(ident.slice(dot + 1));
    }
    if (entity === 'attribute') {
      const canonical = grammar.attributes.get(key) ?? grammar.attributes.get(key.toLowerCase());
      if (canonical === undefined) {
        throw invalidParameter(
          `Invalid order by key '${key}' specified. Valid keys are '${[...new Set(grammar.attributes.values())].join("', '")}'`,
        );
      }
      key = canonical;
    }
    const id = `${entity}.${key}`;
    if (seen.has(id)) throw invalidParameter(`\`order_by\` contains duplicate fields: ['${key}']`);
    seen.add(id);
    out.push({ entity, key, ascending });
  }
  return out;
}
