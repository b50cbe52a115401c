import { parseAllDocuments } from 'yaml';
import { checkName, type PolicyValue } from '../../kvstore-schema/index.js';
import { parsePolicy, type PolicyRule } from '../policy/index.js';
import { PolicyDocumentError } from './errors.js';

/*
 * kvstore-schema's PolicyValue stores the rules as plain Cilium rule objects; these functions
 * turn a policy file into that value (for `ward policy import`) and a stored value back into
 * validated rules (for the agent's policy watch).
 */

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Plain rule objects and metadata names of a file parsePolicy has already accepted. */
function plainRules(text: string): { rules: unknown[]; names: string[] } {
  const rules: unknown[] = [];
  const names: string[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (Array.isArray(doc) || doc.contents === null) continue;
    const v: unknown = doc.toJS({ maxAliasCount: 100 });
    if (Array.isArray(v)) rules.push(...(v as unknown[]));
    else if (isObj(v) && v['kind'] === undefined && v['apiVersion'] === undefined) rules.push(v);
    else if (isObj(v)) {
      const meta = v['metadata'];
      if (isObj(meta) && typeof meta['name'] === 'string' && !names.includes(meta['name'])) names.push(meta['name']);
      if (v['spec'] !== undefined) rules.push(v['spec']);
      if (Array.isArray(v['specs'])) rules.push(...(v['specs'] as unknown[]));
    }
  }
  return { rules, names };
}

/**
 * Validates a policy file (the whole file is rejected with the parser's error, which names file,
 * line and field) and builds the etcd value. The policy is named `name`, else the documents'
 * single metadata.name.
 */
export function policyValueFromText(text: string, file: string, name: string | undefined, nowMs: number): PolicyValue {
  const parsed = parsePolicy(text, file);
  const { rules, names } = plainRules(text);
  const chosen = name ?? (names.length === 1 ? names[0] : undefined);
  if (chosen === undefined) {
    throw new PolicyDocumentError(names.length === 0 ? `${file}: no metadata.name in the file; give the policy a name with --name` : `${file}: several metadata.name (${names.join(', ')}); choose one with --name`);
  }
  try {
    checkName('policy', chosen);
  } catch (err) {
    throw new PolicyDocumentError(`policy name ${JSON.stringify(chosen)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (rules.length !== parsed.rules.length) throw new PolicyDocumentError(`${file}: found ${rules.length} rules but the parser read ${parsed.rules.length}`);
  const description = parsed.rules.map((r) => r.description).filter((d): d is string => d !== undefined)[0] ?? `imported from ${file}`;
  return { v: 1, name: chosen, rules, description, updatedAtMs: nowMs };
}

/** The rules of a stored policy, validated again (a bad value is refused, never half-applied). */
export function policyRulesFromValue(value: PolicyValue): PolicyRule[] {
  return [...parsePolicy(JSON.stringify(value.rules), `etcd:policy/${value.name}`).rules];
}
