import type { PolicyRule } from '../policy/index.js';
import { compileRule, type CompiledRule } from './filters.js';

/** A policy (one imported resource) as stored: its rules compiled, with the revision that set it. */
export interface StoredPolicy {
  readonly name: string;
  readonly rules: readonly CompiledRule[];
  readonly revision: number;
}

export interface RepositoryChange {
  readonly revision: number;
  readonly added: readonly CompiledRule[];
  readonly removed: readonly CompiledRule[];
}

/**
 * Policy repository: policies by name, each a list of rules; every change bumps the revision
 * (always positive once anything changed). Replacing a policy removes its old rules and adds
 * the new ones in one revision. Rule refs are `name#index`.
 */
export class PolicyRepository {
  private readonly policies = new Map<string, StoredPolicy>();
  private rev = 0;

  get revision(): number {
    return this.rev;
  }

  upsert(name: string, rules: readonly PolicyRule[]): RepositoryChange {
    const old = this.policies.get(name);
    const compiled = rules.map((r, i) => compileRule(r, `${name}#${i}`));
    const revision = ++this.rev;
    this.policies.set(name, { name, rules: compiled, revision });
    return { revision, added: compiled, removed: old?.rules ?? [] };
  }

  delete(name: string): RepositoryChange {
    const old = this.policies.get(name);
    if (old === undefined) return { revision: this.rev, added: [], removed: [] };
    this.policies.delete(name);
    return { revision: ++this.rev, added: [], removed: old.rules };
  }

  get(name: string): StoredPolicy | undefined {
    return this.policies.get(name);
  }

  names(): string[] {
    return [...this.policies.keys()].sort();
  }

  /** Every rule, in policy-name then rule order. */
  *rules(): IterableIterator<CompiledRule> {
    for (const name of this.names()) yield* this.policies.get(name)!.rules;
  }

  /** A rule by its `name#index` ref. */
  rule(ref: string): CompiledRule | undefined {
    const hash = ref.lastIndexOf('#');
    if (hash < 0) return undefined;
    return this.policies.get(ref.slice(0, hash))?.rules[Number(ref.slice(hash + 1))];
  }
}
