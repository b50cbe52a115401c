import {
  CidrParseError,
  ENTITY_NAMES,
  LabelSelector,
  SelectorParseError,
  parseCidr,
  type Cidr4,
  type EntityName,
  type RawSelector,
} from '../../identity/index.js';
import { PolicyValidationError, type PolicyIssue } from './errors.js';
import { childPath, readDocuments, type SourceDocument } from './source.js';
import type { HttpRule, Peer, PolicyRule, PortProtocol, PortRule, ProtocolName, RuleElement } from './types.js';

/** Known Cilium fields ward does not implement: rejected with a clear message, never ignored. */
const UNSUPPORTED: Readonly<Record<string, string>> = {
  nodeSelector: 'host policies (nodeSelector) are not supported by ward',
  log: 'policy logging is not supported by ward',
  fromRequires: 'fromRequires is deprecated in Cilium and not supported by ward',
  toRequires: 'toRequires is deprecated in Cilium and not supported by ward',
  fromGroups: 'fromGroups is not supported by ward',
  toGroups: 'toGroups is not supported by ward',
  fromNodes: 'fromNodes is not supported by ward (use the remote-node entity)',
  toNodes: 'toNodes is not supported by ward (use the remote-node entity)',
  toServices: 'toServices needs Kubernetes services and is not supported by ward',
  toFQDNs: 'toFQDNs (DNS-based policy) is not supported by ward',
  icmps: 'ICMP type rules are not supported by ward (an L3-only rule allows ICMP)',
  authentication: 'mutual authentication is not supported by ward',
  terminatingTLS: 'TLS interception is not supported by ward',
  originatingTLS: 'TLS interception is not supported by ward',
  serverNames: 'serverNames (TLS SNI) is not supported by ward',
  listener: 'Envoy listeners are not supported by ward',
  dns: 'DNS L7 rules are not supported by ward',
  kafka: 'Kafka L7 rules are not supported by ward',
  l7proto: 'generic L7 rules are not supported by ward',
  l7: 'generic L7 rules are not supported by ward',
  headerMatches: 'headerMatches is not supported by ward (use headers)',
  cidrGroupRef: 'CIDR groups are not supported by ward',
  cidrGroupSelector: 'CIDR groups are not supported by ward',
};

const POLICY_KINDS = ['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy'];
const API_VERSIONS = ['cilium.io/v2', 'cilium.io/v2alpha1'];

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Collects issues for one document; every check names the field path. */
class Ctx {
  readonly issues: PolicyIssue[] = [];
  rule: number | undefined;
  constructor(
    readonly file: string,
    readonly doc: SourceDocument,
  ) {}

  line(path: string): number | undefined {
    let p = path;
    for (;;) {
      const l = this.doc.lines.get(p);
      if (l !== undefined) return l;
      if (p === '') return undefined;
      const cut = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
      p = cut <= 0 ? '' : p.slice(0, cut);
    }
  }

  err(path: string, message: string): void {
    const line = this.line(path);
    this.issues.push({
      file: this.file,
      document: this.doc.index,
      ...(this.rule !== undefined ? { rule: this.rule } : {}),
      path,
      ...(line !== undefined ? { line } : {}),
      message,
    });
  }

  /** Checks `v` is an object with only `allowed` keys; reports unknown and unsupported ones. */
  obj(v: unknown, path: string, allowed: readonly string[]): Obj | undefined {
    if (!isObj(v)) {
      this.err(path, `must be an object, got ${describe(v)}`);
      return undefined;
    }
    for (const k of Object.keys(v)) {
      if (allowed.includes(k)) continue;
      const why = UNSUPPORTED[k];
      this.err(childPath(path, k), why ?? `unknown field ${JSON.stringify(k)} (allowed: ${allowed.join(', ')})`);
    }
    return v;
  }

  list(v: unknown, path: string): unknown[] | undefined {
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) {
      this.err(path, `must be a list, got ${describe(v)}`);
      return undefined;
    }
    return v as unknown[];
  }

  str(v: unknown, path: string): string | undefined {
    if (v === undefined) return undefined;
    if (typeof v !== 'string') {
      this.err(path, `must be a string, got ${describe(v)}`);
      return undefined;
    }
    return v;
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${JSON.stringify(v)}`;
}

function selector(ctx: Ctx, v: unknown, path: string): LabelSelector | undefined {
  const o = ctx.obj(v, path, ['matchLabels', 'matchExpressions']);
  if (o === undefined) return undefined;
  let ok = true;
  const matchLabels: Record<string, string> = {};
  if (o['matchLabels'] !== undefined && o['matchLabels'] !== null) {
    const ml = o['matchLabels'];
    if (!isObj(ml)) {
      ctx.err(childPath(path, 'matchLabels'), `must be an object, got ${describe(ml)}`);
      ok = false;
    } else {
      for (const [k, val] of Object.entries(ml)) {
        // YAML reads `app: 1` or `x: true` as non-strings; labels are strings.
        if (typeof val === 'string') matchLabels[k] = val;
        else if (typeof val === 'number' || typeof val === 'boolean') matchLabels[k] = String(val);
        else if (val === null) matchLabels[k] = '';
        else {
          ctx.err(childPath(childPath(path, 'matchLabels'), k), `must be a string, got ${describe(val)}`);
          ok = false;
        }
      }
    }
  }
  const exprs: { key: string; operator: string; values?: string[] }[] = [];
  const me = ctx.list(o['matchExpressions'], childPath(path, 'matchExpressions'));
  me?.forEach((e, i) => {
    const p = childPath(childPath(path, 'matchExpressions'), i);
    const eo = ctx.obj(e, p, ['key', 'operator', 'values']);
    if (eo === undefined) return void (ok = false);
    const key = ctx.str(eo['key'], childPath(p, 'key'));
    const op = ctx.str(eo['operator'], childPath(p, 'operator'));
    if (key === undefined) ctx.err(childPath(p, 'key'), 'is required');
    if (op === undefined) ctx.err(childPath(p, 'operator'), 'is required');
    const vals = ctx.list(eo['values'], childPath(p, 'values'));
    const values: string[] = [];
    vals?.forEach((x, j) => {
      if (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean') values.push(String(x));
      else {
        ctx.err(childPath(childPath(p, 'values'), j), `must be a string, got ${describe(x)}`);
        ok = false;
      }
    });
    if (key === undefined || op === undefined) return void (ok = false);
    exprs.push(eo['values'] === undefined ? { key, operator: op } : { key, operator: op, values });
  });
  if (!ok) return undefined;
  const raw: RawSelector = { matchLabels, matchExpressions: exprs };
  try {
    return LabelSelector.parse(raw);
  } catch (e) {
    if (e instanceof SelectorParseError) {
      ctx.err(childPath(path, e.field), e.message.slice(e.field.length + 2));
      return undefined;
    }
    throw e;
  }
}

function cidr(ctx: Ctx, v: unknown, path: string): Cidr4 | undefined {
  const s = ctx.str(v, path);
  if (s === undefined) {
    if (v === undefined) ctx.err(path, 'is required');
    return undefined;
  }
  try {
    return parseCidr(s.trim());
  } catch (e) {
    if (e instanceof CidrParseError) {
      ctx.err(path, e.message);
      return undefined;
    }
    throw e;
  }
}

function portNumber(ctx: Ctx, v: unknown, path: string, what: string): number | undefined {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && /^\d+$/.test(v.trim())) n = Number(v.trim());
  else if (typeof v === 'string') {
    ctx.err(path, `named ports are not supported by ward (${what} ${JSON.stringify(v)}): use a number`);
    return undefined;
  } else {
    ctx.err(path, `${what} must be a number, got ${describe(v)}`);
    return undefined;
  }
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    ctx.err(path, `${what} ${n} is out of range 0..65535`);
    return undefined;
  }
  return n;
}

function ports(ctx: Ctx, v: unknown, path: string): PortProtocol[] | undefined {
  const list = ctx.list(v, path);
  if (list === undefined) {
    ctx.err(path, 'is required: list at least one port (port 0 = all ports)');
    return undefined;
  }
  if (list.length === 0) {
    ctx.err(path, 'must list at least one port (port 0 = all ports)');
    return undefined;
  }
  const out: PortProtocol[] = [];
  let ok = true;
  list.forEach((item, i) => {
    const p = childPath(path, i);
    const o = ctx.obj(item, p, ['port', 'endPort', 'protocol']);
    if (o === undefined) return void (ok = false);
    const port = o['port'] === undefined ? 0 : portNumber(ctx, o['port'], childPath(p, 'port'), 'port');
    let endPort = port;
    if (o['endPort'] !== undefined && o['endPort'] !== null && port !== undefined) {
      const e = portNumber(ctx, o['endPort'], childPath(p, 'endPort'), 'endPort');
      if (e === undefined) return void (ok = false);
      if (port === 0) return void (ctx.err(childPath(p, 'endPort'), 'endPort needs a non-zero port'), (ok = false));
      if (e < port) return void (ctx.err(childPath(p, 'endPort'), `endPort ${e} is below port ${port}`), (ok = false));
      endPort = e;
    }
    let protocol: ProtocolName = 'ANY';
    if (o['protocol'] !== undefined && o['protocol'] !== null) {
      const s = typeof o['protocol'] === 'string' ? o['protocol'].toUpperCase() : undefined;
      if (s !== 'TCP' && s !== 'UDP' && s !== 'SCTP' && s !== 'ANY') {
        ctx.err(childPath(p, 'protocol'), `unknown protocol ${JSON.stringify(o['protocol'])} (use TCP, UDP, SCTP or ANY)`);
        return void (ok = false);
      }
      protocol = s;
    }
    if (port === undefined || endPort === undefined) return void (ok = false);
    out.push({ port, endPort, protocol });
  });
  return ok ? out : undefined;
}

function regex(ctx: Ctx, v: unknown, path: string): string | undefined {
  const s = ctx.str(v, path);
  if (s === undefined) return undefined;
  try {
    new RegExp(`^(?:${s})$`);
  } catch (e) {
    ctx.err(path, `invalid regular expression ${JSON.stringify(s)}: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
  return s;
}

function httpRules(ctx: Ctx, v: unknown, path: string): HttpRule[] | undefined {
  const list = ctx.list(v, path);
  if (list === undefined) return undefined;
  const out: HttpRule[] = [];
  list.forEach((item, i) => {
    const p = childPath(path, i);
    const o = ctx.obj(item, p, ['method', 'path', 'host', 'headers']);
    if (o === undefined) return;
    const method = regex(ctx, o['method'], childPath(p, 'method'));
    const pathRe = regex(ctx, o['path'], childPath(p, 'path'));
    const host = regex(ctx, o['host'], childPath(p, 'host'));
    const headers: string[] = [];
    ctx.list(o['headers'], childPath(p, 'headers'))?.forEach((h, j) => {
      const hp = childPath(childPath(p, 'headers'), j);
      const s = ctx.str(h, hp);
      if (s === undefined) return;
      const colon = s.indexOf(':');
      const name = (colon < 0 ? s : s.slice(0, colon)).trim();
      if (name === '' || /\s/.test(name)) return void ctx.err(hp, `bad header ${JSON.stringify(s)} (use "Name" or "Name: value")`);
      if (colon >= 0 && regex(ctx, s.slice(colon + 1).trim(), hp) === undefined) return;
      headers.push(s);
    });
    out.push({
      ...(method !== undefined ? { method } : {}),
      ...(pathRe !== undefined ? { path: pathRe } : {}),
      ...(host !== undefined ? { host } : {}),
      headers,
    });
  });
  return out;
}

function toPorts(ctx: Ctx, v: unknown, path: string, deny: boolean): PortRule[] {
  const list = ctx.list(v, path) ?? [];
  const out: PortRule[] = [];
  list.forEach((item, i) => {
    const p = childPath(path, i);
    const o = ctx.obj(item, p, deny ? ['ports'] : ['ports', 'rules']);
    if (o === undefined) return;
    const ps = ports(ctx, o['ports'], childPath(p, 'ports'));
    let http: HttpRule[] | undefined;
    if (o['rules'] !== undefined && o['rules'] !== null) {
      const rp = childPath(p, 'rules');
      const r = ctx.obj(o['rules'], rp, ['http', 'HTTP']);
      if (r !== undefined) {
        const key = r['http'] !== undefined ? 'http' : 'HTTP';
        if (r[key] !== undefined) http = httpRules(ctx, r[key], childPath(rp, key));
      }
      if (http !== undefined && ps !== undefined) {
        // L7 rules apply to exactly one TCP port (as in Cilium).
        ps.forEach((pp, j) => {
          const pth = childPath(childPath(childPath(p, 'ports'), j), 'port');
          if (pp.port === 0) ctx.err(pth, 'rules.http needs a specific port (not 0)');
          else if (pp.endPort !== pp.port) ctx.err(pth, 'rules.http cannot be used with a port range (endPort)');
          else if (pp.protocol === 'UDP' || pp.protocol === 'SCTP') ctx.err(pth, `rules.http needs protocol TCP, got ${pp.protocol}`);
        });
      }
    }
    if (ps === undefined) return;
    const tcpOnly = http !== undefined ? ps.map((pp) => ({ ...pp, protocol: 'TCP' as const })) : ps;
    out.push(http !== undefined ? { ports: tcpOnly, http } : { ports: ps });
  });
  return out;
}

const ENTITY_ALIASES: Readonly<Record<string, EntityName>> = { 'world-ipv4': 'world' };

function element(ctx: Ctx, v: unknown, path: string, dir: 'ingress' | 'egress', deny: boolean): RuleElement | undefined {
  const pre = dir === 'ingress' ? 'from' : 'to';
  const fields = [`${pre}Endpoints`, `${pre}Entities`, `${pre}CIDR`, `${pre}CIDRSet`, 'toPorts'];
  const o = ctx.obj(v, path, fields);
  if (o === undefined) return undefined;
  const peers: Peer[] = [];
  ctx.list(o[`${pre}Endpoints`], childPath(path, `${pre}Endpoints`))?.forEach((s, i) => {
    const sel = selector(ctx, s, childPath(childPath(path, `${pre}Endpoints`), i));
    if (sel !== undefined) peers.push({ kind: 'endpoints', selector: sel });
  });
  ctx.list(o[`${pre}Entities`], childPath(path, `${pre}Entities`))?.forEach((e, i) => {
    const p = childPath(childPath(path, `${pre}Entities`), i);
    const name = typeof e === 'string' ? (ENTITY_ALIASES[e] ?? e) : e;
    if (typeof name !== 'string' || !(ENTITY_NAMES as readonly string[]).includes(name)) {
      ctx.err(p, `unknown entity ${JSON.stringify(e)} (ward supports ${ENTITY_NAMES.join(', ')})`);
      return;
    }
    peers.push({ kind: 'entity', entity: name as EntityName });
  });
  ctx.list(o[`${pre}CIDR`], childPath(path, `${pre}CIDR`))?.forEach((c, i) => {
    const parsed = cidr(ctx, c, childPath(childPath(path, `${pre}CIDR`), i));
    if (parsed !== undefined) peers.push({ kind: 'cidr', cidr: parsed, except: [] });
  });
  ctx.list(o[`${pre}CIDRSet`], childPath(path, `${pre}CIDRSet`))?.forEach((c, i) => {
    const p = childPath(childPath(path, `${pre}CIDRSet`), i);
    const co = ctx.obj(c, p, ['cidr', 'except']);
    if (co === undefined) return;
    const base = cidr(ctx, co['cidr'], childPath(p, 'cidr'));
    const except: Cidr4[] = [];
    ctx.list(co['except'], childPath(p, 'except'))?.forEach((x, j) => {
      const ep = childPath(childPath(p, 'except'), j);
      const ex = cidr(ctx, x, ep);
      if (ex === undefined || base === undefined) return;
      if (!(ex.len >= base.len && ((ex.addr ^ base.addr) & (base.len === 0 ? 0 : (0xffff_ffff << (32 - base.len)) >>> 0)) === 0)) {
        ctx.err(ep, `except ${JSON.stringify(x)} is not inside cidr ${JSON.stringify(co['cidr'])}`);
        return;
      }
      except.push(ex);
    });
    if (base !== undefined) peers.push({ kind: 'cidr', cidr: base, except });
  });
  const ports = toPorts(ctx, o['toPorts'], childPath(path, 'toPorts'), deny);
  return { peers, toPorts: ports, path };
}

function elements(ctx: Ctx, rule: Obj, path: string, field: 'ingress' | 'egress' | 'ingressDeny' | 'egressDeny'): RuleElement[] {
  const dir = field.startsWith('ingress') ? 'ingress' : 'egress';
  const list = ctx.list(rule[field], childPath(path, field)) ?? [];
  const out: RuleElement[] = [];
  list.forEach((e, i) => {
    const el = element(ctx, e, childPath(childPath(path, field), i), dir, field.endsWith('Deny'));
    if (el !== undefined) out.push(el);
  });
  return out;
}

function ruleLabels(ctx: Ctx, v: unknown, path: string): string[] {
  const out: string[] = [];
  ctx.list(v, path)?.forEach((l, i) => {
    const p = childPath(path, i);
    if (typeof l === 'string') return void out.push(l);
    const o = ctx.obj(l, p, ['key', 'value', 'source']);
    if (o === undefined) return;
    const key = ctx.str(o['key'], childPath(p, 'key'));
    const value = ctx.str(o['value'], childPath(p, 'value')) ?? '';
    const source = ctx.str(o['source'], childPath(p, 'source'));
    if (key === undefined) return void ctx.err(childPath(p, 'key'), 'is required');
    out.push(`${source !== undefined ? `${source}:` : ''}${key}${value !== '' ? `=${value}` : ''}`);
  });
  return out;
}

function rule(ctx: Ctx, v: unknown, path: string, index: number, name: string | undefined): PolicyRule | undefined {
  ctx.rule = index;
  const before = ctx.issues.length;
  const fields = ['endpointSelector', 'ingress', 'ingressDeny', 'egress', 'egressDeny', 'labels', 'description', 'enableDefaultDeny'];
  const o = ctx.obj(v, path, fields);
  if (o === undefined) return undefined;
  let endpointSelector: LabelSelector | undefined;
  if (o['endpointSelector'] === undefined || o['endpointSelector'] === null) ctx.err(childPath(path, 'endpointSelector'), 'is required (use {} to select all endpoints)');
  else endpointSelector = selector(ctx, o['endpointSelector'], childPath(path, 'endpointSelector'));
  const ingress = elements(ctx, o, path, 'ingress');
  const ingressDeny = elements(ctx, o, path, 'ingressDeny');
  const egress = elements(ctx, o, path, 'egress');
  const egressDeny = elements(ctx, o, path, 'egressDeny');
  const description = ctx.str(o['description'], childPath(path, 'description'));
  const labels = ruleLabels(ctx, o['labels'], childPath(path, 'labels'));
  // Cilium: a direction enters default deny when the rule has (non-empty) rules for it.
  const defaultDeny = { ingress: ingress.length + ingressDeny.length > 0, egress: egress.length + egressDeny.length > 0 };
  if (o['enableDefaultDeny'] !== undefined) {
    const dp = childPath(path, 'enableDefaultDeny');
    const d = ctx.obj(o['enableDefaultDeny'], dp, ['ingress', 'egress']);
    for (const dir of ['ingress', 'egress'] as const) {
      const val = d?.[dir];
      if (val === undefined) continue;
      if (typeof val !== 'boolean') ctx.err(childPath(dp, dir), `must be true or false, got ${describe(val)}`);
      else defaultDeny[dir] = val;
    }
  }
  if (ctx.issues.length > before || endpointSelector === undefined) return undefined;
  const line = ctx.line(path);
  return {
    endpointSelector,
    ingress,
    ingressDeny,
    egress,
    egressDeny,
    defaultDeny,
    ...(description !== undefined ? { description } : {}),
    labels,
    origin: {
      file: ctx.file,
      document: ctx.doc.index,
      rule: index,
      path,
      ...(line !== undefined ? { line } : {}),
      ...(name !== undefined ? { name } : {}),
    },
  };
}

function documentRules(ctx: Ctx): PolicyRule[] {
  const v = ctx.doc.value;
  const out: PolicyRule[] = [];
  const push = (r: PolicyRule | undefined): void => void (r !== undefined && out.push(r));
  if (Array.isArray(v)) {
    v.forEach((r, i) => push(rule(ctx, r, childPath('', i), i, undefined)));
    return out;
  }
  if (!isObj(v)) {
    ctx.err('', `a policy document must be a rule, a list of rules or a CiliumNetworkPolicy, got ${describe(v)}`);
    return out;
  }
  if (v['kind'] === undefined && v['apiVersion'] === undefined) {
    push(rule(ctx, v, '', 0, undefined));
    return out;
  }
  const o = ctx.obj(v, '', ['apiVersion', 'kind', 'metadata', 'spec', 'specs', 'status']);
  if (o === undefined) return out;
  if (typeof o['kind'] !== 'string' || !POLICY_KINDS.includes(o['kind'])) ctx.err('kind', `must be one of ${POLICY_KINDS.join(', ')}, got ${describe(o['kind'])}`);
  if (typeof o['apiVersion'] !== 'string' || !API_VERSIONS.includes(o['apiVersion'])) ctx.err('apiVersion', `must be one of ${API_VERSIONS.join(', ')}, got ${describe(o['apiVersion'])}`);
  let name: string | undefined;
  if (o['metadata'] !== undefined) {
    if (!isObj(o['metadata'])) ctx.err('metadata', `must be an object, got ${describe(o['metadata'])}`);
    else name = ctx.str(o['metadata']['name'], 'metadata.name');
  }
  if (o['spec'] === undefined && o['specs'] === undefined) ctx.err('', 'a CiliumNetworkPolicy needs spec or specs');
  let i = 0;
  if (o['spec'] !== undefined) push(rule(ctx, o['spec'], 'spec', i++, name));
  ctx.list(o['specs'], 'specs')?.forEach((r, j) => push(rule(ctx, r, childPath('specs', j), i++, name)));
  return out;
}

export interface ParsedPolicy {
  readonly file: string;
  readonly rules: readonly PolicyRule[];
  /** metadata.name of the documents (in order, unique), if any. */
  readonly names: readonly string[];
}

/**
 * Parses and validates a policy file's text (YAML or JSON: one rule, a list of rules, or
 * CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy documents, multi-document YAML).
 * Throws PolicyValidationError listing every problem; nothing is returned partially.
 */
export function parsePolicy(text: string, file: string): ParsedPolicy {
  const { documents, errors } = readDocuments(text);
  const issues: PolicyIssue[] = errors.map((e) => ({ file, document: e.document, path: '', ...(e.line !== undefined ? { line: e.line } : {}), message: e.message }));
  const rules: PolicyRule[] = [];
  const names: string[] = [];
  for (const doc of documents) {
    const ctx = new Ctx(file, doc);
    const rs = documentRules(ctx);
    issues.push(...ctx.issues);
    rules.push(...rs);
    for (const r of rs) if (r.origin.name !== undefined && !names.includes(r.origin.name)) names.push(r.origin.name);
  }
  if (issues.length === 0 && rules.length === 0) issues.push({ file, document: 0, path: '', message: 'the file holds no policy rules' });
  if (issues.length > 0) throw new PolicyValidationError(file, issues);
  return { file, rules, names };
}
