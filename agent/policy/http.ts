import type { HttpRule } from './types.js';

/** An HTTP request as the trace (and later the proxy) evaluates it. */
export interface HttpRequest {
  readonly method: string;
  readonly path: string;
  readonly host?: string;
  /** Header name (any case) -> value. */
  readonly headers: readonly (readonly [string, string])[];
}

const compiled = new Map<string, RegExp>();

/** Whole-value match of a policy regex (anchored, as Envoy's full match). */
export function fullMatch(pattern: string, value: string): boolean {
  let re = compiled.get(pattern);
  if (re === undefined) {
    re = new RegExp(`^(?:${pattern})$`);
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(pattern, re);
  }
  return re.test(value);
}

function headerMatches(spec: string, req: HttpRequest): boolean {
  const colon = spec.indexOf(':');
  const name = (colon < 0 ? spec : spec.slice(0, colon)).trim().toLowerCase();
  const want = colon < 0 ? undefined : spec.slice(colon + 1).trim();
  return req.headers.some(([n, v]) => n.toLowerCase() === name && (want === undefined || fullMatch(want, v.trim())));
}

/** A rule matches when every field it sets matches; an empty rule matches every request. */
export function httpRuleMatches(rule: HttpRule, req: HttpRequest): boolean {
  if (rule.method !== undefined && !fullMatch(rule.method, req.method)) return false;
  if (rule.path !== undefined && !fullMatch(rule.path, req.path)) return false;
  if (rule.host !== undefined && !fullMatch(rule.host, req.host ?? '')) return false;
  return rule.headers.every((h) => headerMatches(h, req));
}

export function describeHttpRule(rule: HttpRule): string {
  const parts: string[] = [];
  if (rule.method !== undefined) parts.push(`method=${rule.method}`);
  if (rule.path !== undefined) parts.push(`path=${rule.path}`);
  if (rule.host !== undefined) parts.push(`host=${rule.host}`);
  for (const h of rule.headers) parts.push(`header ${h}`);
  return parts.length === 0 ? '(any request)' : parts.join(' ');
}
