import { WardError } from './errors.js';
import { SOURCE_ANY, SOURCE_RESERVED, type LabelSet } from './labels.js';

/** A selector that cannot be built: bad key, operator or values. `field` is relative to the selector. */
export class SelectorParseError extends WardError {
  constructor(
    readonly field: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`${field}: ${reason}`, options);
  }
}

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
const OPERATORS: readonly SelectorOperator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

/**
 * One requirement on one label key. `source` is `any` unless the key was written with a
 * source prefix (`k8s:app`): then only a label of that source satisfies it.
 */
export interface Requirement {
  readonly source: string;
  readonly key: string;
  readonly operator: SelectorOperator;
  /** Sorted, unique; empty for Exists / DoesNotExist. */
  readonly values: readonly string[];
}

/** The raw selector as written in a policy (`matchLabels`, `matchExpressions`). */
export interface RawSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly { readonly key: string; readonly operator: string; readonly values?: readonly string[] }[];
}

const SOURCE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** `k8s:app` -> {source k8s, key app}; `app` and `any:app` -> {source any, key app}. */
export function splitSelectorKey(text: string): { source: string; key: string } {
  const colon = text.indexOf(':');
  if (colon > 0) {
    const source = text.slice(0, colon);
    if (SOURCE_RE.test(source)) return { source, key: text.slice(colon + 1) };
  }
  return { source: SOURCE_ANY, key: text };
}

function requirementMatches(r: Requirement, labels: LabelSet): boolean {
  const l = labels.get(r.key);
  const present = l !== undefined && (r.source === SOURCE_ANY || l.source === r.source);
  switch (r.operator) {
    case 'Exists':
      return present;
    case 'DoesNotExist':
      return !present;
    case 'In':
      return present && r.values.includes(l.value);
    case 'NotIn':
      return !present || !r.values.includes(l.value);
  }
}

function compareRequirements(a: Requirement, b: Requirement): number {
  const ka = `${a.key}\u0000${a.source}\u0000${a.operator}\u0000${a.values.join('\u0001')}`;
  const kb = `${b.key}\u0000${b.source}\u0000${b.operator}\u0000${b.values.join('\u0001')}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/**
 * A label selector (Kubernetes semantics: all requirements must hold; the empty selector
 * matches every label set). Immutable; `canonical` is equal for selectors that are equal
 * as written up to order and `matchLabels` vs `In` with one value.
 */
export class LabelSelector {
  readonly requirements: readonly Requirement[];
  readonly canonical: string;

  private constructor(requirements: readonly Requirement[]) {
    this.requirements = requirements;
    this.canonical = `sel:${JSON.stringify(requirements.map((r) => [r.source, r.key, r.operator, r.values]))}`;
  }

  static of(requirements: Iterable<Requirement>): LabelSelector {
    const reqs = [...requirements].map((r) => ({ ...r, values: [...new Set(r.values)].sort() }));
    reqs.sort(compareRequirements);
    const dedup = reqs.filter((r, i) => i === 0 || compareRequirements(reqs[i - 1]!, r) !== 0);
    return new LabelSelector(dedup);
  }

  /** Builds a selector from its policy form; throws SelectorParseError naming the field. */
  static parse(raw: RawSelector): LabelSelector {
    const reqs: Requirement[] = [];
    for (const [k, v] of Object.entries(raw.matchLabels ?? {})) {
      const { source, key } = splitSelectorKey(k);
      if (key === '') throw new SelectorParseError(`matchLabels.${k}`, 'empty label key');
      if (typeof v !== 'string') throw new SelectorParseError(`matchLabels.${k}`, 'value must be a string');
      reqs.push({ source, key, operator: 'In', values: [v] });
    }
    (raw.matchExpressions ?? []).forEach((e, i) => {
      const field = `matchExpressions[${i}]`;
      const { source, key } = splitSelectorKey(e.key);
      if (key === '') throw new SelectorParseError(`${field}.key`, 'empty label key');
      if (!OPERATORS.includes(e.operator as SelectorOperator)) {
        throw new SelectorParseError(`${field}.operator`, `unknown operator ${JSON.stringify(e.operator)} (use ${OPERATORS.join(', ')})`);
      }
      const operator = e.operator as SelectorOperator;
      const values = e.values ?? [];
      if ((operator === 'In' || operator === 'NotIn') && values.length === 0) {
        throw new SelectorParseError(`${field}.values`, `operator ${operator} needs at least one value`);
      }
      if ((operator === 'Exists' || operator === 'DoesNotExist') && values.length > 0) {
        throw new SelectorParseError(`${field}.values`, `operator ${operator} takes no values`);
      }
      reqs.push({ source, key, operator, values });
    });
    return LabelSelector.of(reqs);
  }

  get isEmpty(): boolean {
    return this.requirements.length === 0;
  }

  matches(labels: LabelSet): boolean {
    for (const r of this.requirements) if (!requirementMatches(r, labels)) return false;
    return true;
  }

  /** True if some requirement demands a `reserved:` label be present (In / Exists). */
  get requiresReserved(): boolean {
    return this.requirements.some((r) => r.source === SOURCE_RESERVED && (r.operator === 'In' || r.operator === 'Exists'));
  }

  /**
   * Index tokens: every label set this selector matches carries one of them (see
   * labelTokens). Undefined if the selector has no positive requirement to index on.
   */
  indexTokens(): readonly string[] | undefined {
    const inReq = this.requirements.find((r) => r.operator === 'In');
    return inReq?.values.map((v) => labelToken(inReq.key, v));
  }

  /** Policy form (`matchLabels` for single-value In, `matchExpressions` for the rest). */
  toRaw(): RawSelector {
    const matchLabels: Record<string, string> = {};
    const matchExpressions: { key: string; operator: string; values?: string[] }[] = [];
    for (const r of this.requirements) {
      const key = r.source === SOURCE_ANY ? r.key : `${r.source}:${r.key}`;
      if (r.operator === 'In' && r.values.length === 1 && !(key in matchLabels)) matchLabels[key] = r.values[0]!;
      else matchExpressions.push(r.values.length > 0 ? { key, operator: r.operator, values: [...r.values] } : { key, operator: r.operator });
    }
    return {
      ...(Object.keys(matchLabels).length > 0 ? { matchLabels } : {}),
      ...(matchExpressions.length > 0 ? { matchExpressions } : {}),
    };
  }

  toString(): string {
    if (this.isEmpty) return '{}';
    return this.requirements
      .map((r) => {
        const key = r.source === SOURCE_ANY ? r.key : `${r.source}:${r.key}`;
        switch (r.operator) {
          case 'Exists':
            return key;
          case 'DoesNotExist':
            return `!${key}`;
          case 'In':
            return r.values.length === 1 ? `${key}=${r.values[0]}` : `${key} in (${r.values.join(',')})`;
          case 'NotIn':
            return `${key} notin (${r.values.join(',')})`;
        }
      })
      .join(',');
  }
}

/** Index token of a label value (`key=value`, whatever the source). */
export function labelToken(key: string, value: string): string {
  return `kv:${key}=${value}`;
}

/** All index tokens a label set carries (one per label). */
export function labelTokens(labels: LabelSet): string[] {
  const out: string[] = [];
  for (const l of labels.labels) out.push(labelToken(l.key, l.value));
  return out;
}
