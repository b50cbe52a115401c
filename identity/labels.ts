import { LabelParseError } from './errors.js';

/**
 * A label is `source:key=value`. The source says who set it (`k8s`, `reserved`, `cidr`, ...);
 * a label written without one gets `unspec`, as in Cilium. Keys and values may contain
 * `/`, `=`, `;` and `:` (values only for `:`, see parseLabel): never split them naively.
 */
export interface Label {
  readonly source: string;
  readonly key: string;
  readonly value: string;
}

export const SOURCE_UNSPEC = 'unspec';
export const SOURCE_ANY = 'any';
export const SOURCE_RESERVED = 'reserved';
export const SOURCE_CIDR = 'cidr';

const SOURCE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Parses `source:key=value`, `key=value`, `source:key` or `key`. The source is the text before
 * the first `:` only when that `:` comes before the first `=` (so values may hold `:`).
 */
export function parseLabel(text: string): Label {
  const trimmed = text.trim();
  if (trimmed === '') throw new LabelParseError(text, 'empty label');
  const eq = trimmed.indexOf('=');
  const colon = trimmed.indexOf(':');
  let source = SOURCE_UNSPEC;
  let rest = trimmed;
  if (colon > 0 && (eq < 0 || colon < eq)) {
    source = trimmed.slice(0, colon);
    rest = trimmed.slice(colon + 1);
    if (!SOURCE_RE.test(source)) throw new LabelParseError(text, `bad source ${JSON.stringify(source)}`);
  }
  const eq2 = rest.indexOf('=');
  const key = eq2 < 0 ? rest : rest.slice(0, eq2);
  const value = eq2 < 0 ? '' : rest.slice(eq2 + 1);
  if (key === '') throw new LabelParseError(text, 'empty key');
  if (/\s/.test(key)) throw new LabelParseError(text, 'key contains whitespace');
  return { source, key, value };
}

/** `source:key=value`, leaving out `unspec:` and `=` for an empty value. parseLabel inverts it. */
export function formatLabel(l: Label): string {
  const prefix = l.source === SOURCE_UNSPEC ? '' : `${l.source}:`;
  return l.value === '' ? `${prefix}${l.key}` : `${prefix}${l.key}=${l.value}`;
}

function compareLabels(a: Label, b: Label): number {
  if (a.key !== b.key) return a.key < b.key ? -1 : 1;
  if (a.source !== b.source) return a.source < b.source ? -1 : 1;
  if (a.value !== b.value) return a.value < b.value ? -1 : 1;
  return 0;
}

/**
 * An immutable, sorted set of labels with at most one label per key (as Cilium's map of
 * key to label). `canonical` is the identity key: equal sets have equal canonical strings.
 */
export class LabelSet {
  readonly labels: readonly Label[];
  readonly canonical: string;
  private readonly byKey: ReadonlyMap<string, Label>;

  private constructor(labels: readonly Label[]) {
    this.labels = labels;
    this.byKey = new Map(labels.map((l) => [l.key, l]));
    this.canonical = JSON.stringify(labels.map((l) => [l.source, l.key, l.value]));
  }

  static of(labels: Iterable<Label>): LabelSet {
    const sorted = [...labels].map((l) => ({ source: l.source, key: l.key, value: l.value }));
    sorted.sort(compareLabels);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      const cur = sorted[i]!;
      if (prev.key === cur.key) {
        if (compareLabels(prev, cur) === 0) {
          sorted.splice(i, 1);
          i--;
          continue;
        }
        throw new LabelParseError(formatLabel(cur), `key ${JSON.stringify(cur.key)} appears twice with different values or sources`);
      }
    }
    return new LabelSet(sorted);
  }

  /** Parses a list such as `["k8s:app=web", "env=prod"]`. */
  static parse(texts: Iterable<string>): LabelSet {
    return LabelSet.of([...texts].map(parseLabel));
  }

  /** Parses a comma-separated list (`app=web,env=prod`), as taken by the CLI. */
  static parseCsv(text: string): LabelSet {
    const parts = text.split(',').filter((p) => p.trim() !== '');
    return LabelSet.parse(parts);
  }

  /** Inverse of `canonical`; throws LabelParseError on malformed input. */
  static fromCanonical(canonical: string): LabelSet {
    let raw: unknown;
    try {
      raw = JSON.parse(canonical);
    } catch (cause) {
      throw new LabelParseError(canonical, `not a canonical label set (${String(cause)})`);
    }
    if (!Array.isArray(raw)) throw new LabelParseError(canonical, 'not a canonical label set');
    const labels: Label[] = raw.map((t: unknown) => {
      if (!Array.isArray(t) || t.length !== 3 || !t.every((x) => typeof x === 'string')) {
        throw new LabelParseError(canonical, 'not a canonical label set');
      }
      const [source, key, value] = t as [string, string, string];
      return { source, key, value };
    });
    return LabelSet.of(labels);
  }

  get size(): number {
    return this.labels.length;
  }

  get(key: string): Label | undefined {
    return this.byKey.get(key);
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  equals(other: LabelSet): boolean {
    return this.canonical === other.canonical;
  }

  /** Human form: `k8s:app=web,env=prod`. */
  toString(): string {
    return this.labels.map(formatLabel).join(',');
  }

  toStrings(): string[] {
    return this.labels.map(formatLabel);
  }
}
