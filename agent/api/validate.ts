import { isAbsolute, normalize } from 'node:path';
import { LabelSet, WardError } from '../../identity/index.js';
import type { TraceQuery } from '../calc/index.js';
import { ENDPOINT_NAME_RE } from '../endpoint/index.js';
import type { HttpRequest } from '../policy/index.js';

/** A request body the API refuses (HTTP 400). */
export class ApiValidationError extends WardError {}

export interface ValidAddEndpoint {
  readonly name: string;
  readonly labels: LabelSet;
  /** Absolute netns path. */
  readonly netns: string;
  readonly ip?: string;
  /** Interface name inside the netns (default eth0). */
  readonly ifname?: string;
}

const NETNS_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;
const KEYS = new Set(['name', 'labels', 'netns', 'ip', 'ifname']);
// Linux IFNAMSIZ is 16 with the NUL; no '/', ':' or whitespace.
const IFNAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;

export function validateEndpointName(name: unknown): string {
  if (typeof name !== 'string' || !ENDPOINT_NAME_RE.test(name)) {
    throw new ApiValidationError(`name ${JSON.stringify(name)} must be 1-63 lowercase letters, digits, '.', '_' or '-', starting and ending alphanumeric`);
  }
  return name;
}

/** A netns name means /run/netns/NAME; a path must be absolute and normalised. */
export function resolveNetns(v: unknown): string {
  if (typeof v !== 'string' || v === '') throw new ApiValidationError('netns must be a namespace name or an absolute path');
  if (!v.includes('/')) {
    if (!NETNS_NAME_RE.test(v)) throw new ApiValidationError(`netns name ${JSON.stringify(v)} has characters outside [A-Za-z0-9._-]`);
    return `/run/netns/${v}`;
  }
  if (!isAbsolute(v) || normalize(v) !== v) throw new ApiValidationError(`netns path ${JSON.stringify(v)} must be absolute and normalised`);
  return v;
}

/** Checks a POST /v1/endpoints body; every problem names its field. */
export function validateAddEndpoint(body: unknown): ValidAddEndpoint {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiValidationError('body must be a JSON object');
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.has(k)) throw new ApiValidationError(`unknown field ${JSON.stringify(k)} (known: ${[...KEYS].join(', ')})`);
  const name = validateEndpointName(o['name']);
  const raw = o['labels'];
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > 64 || !raw.every((l) => typeof l === 'string' && l.length <= 256)) {
    throw new ApiValidationError('labels must be a list of 1-64 strings like "app=web"');
  }
  let labels: LabelSet;
  try {
    labels = LabelSet.parse(raw as string[]);
  } catch (err) {
    throw new ApiValidationError(`labels: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (labels.labels.some((l) => l.source === 'reserved' || l.source === 'cidr')) throw new ApiValidationError('labels: sources reserved: and cidr: belong to ward');
  const netns = resolveNetns(o['netns']);
  const ip = o['ip'];
  if (ip !== undefined && typeof ip !== 'string') throw new ApiValidationError('ip must be a string like "10.200.1.5"');
  const ifname = o['ifname'];
  if (ifname !== undefined && (typeof ifname !== 'string' || !IFNAME_RE.test(ifname))) {
    throw new ApiValidationError(`ifname ${JSON.stringify(ifname)} must be 1-15 letters, digits, '_', '.' or '-' (a Linux interface name)`);
  }
  return { name, labels, netns, ...(ip !== undefined ? { ip } : {}), ...(ifname !== undefined ? { ifname } : {}) };
}

const TRACE_KEYS = new Set(['from', 'to', 'dport', 'protocol', 'http']);
const PEER_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$/;

/** Checks a POST /v1/policy/trace body; every problem names its field. */
export function validateTraceRequest(body: unknown): TraceQuery {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiValidationError('body must be a JSON object');
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!TRACE_KEYS.has(k)) throw new ApiValidationError(`unknown field ${JSON.stringify(k)} (known: ${[...TRACE_KEYS].join(', ')})`);
  const peer = (field: 'from' | 'to'): string => {
    const v = o[field];
    if (typeof v !== 'string' || !PEER_RE.test(v)) throw new ApiValidationError(`${field} must be an endpoint name, an IPv4 address, host, remote-node or world`);
    return v;
  };
  const dport = o['dport'];
  if (typeof dport !== 'number' || !Number.isInteger(dport) || dport < 0 || dport > 65535) throw new ApiValidationError('dport must be a port number 0..65535');
  const proto = o['protocol'] ?? 'TCP';
  if (proto !== 'TCP' && proto !== 'UDP' && proto !== 'SCTP' && proto !== 'ANY') throw new ApiValidationError('protocol must be TCP, UDP, SCTP or ANY');
  const q: TraceQuery = { from: peer('from'), to: peer('to'), dport, protocol: proto };
  const h = o['http'];
  if (h === undefined) return q;
  if (typeof h !== 'object' || h === null || Array.isArray(h)) throw new ApiValidationError('http must be an object {method, path, host?, headers}');
  const r = h as Record<string, unknown>;
  const str = (k: string, max: number): string | undefined => {
    const v = r[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v.length > max) throw new ApiValidationError(`http.${k} must be a string of at most ${max} characters`);
    return v;
  };
  const headers = r['headers'] ?? [];
  if (!Array.isArray(headers) || headers.length > 64 || !headers.every((x) => Array.isArray(x) && x.length === 2 && x.every((y) => typeof y === 'string' && y.length <= 4096))) {
    throw new ApiValidationError('http.headers must be a list of at most 64 [name, value] string pairs');
  }
  const host = str('host', 1024);
  const http: HttpRequest = { method: str('method', 32) ?? 'GET', path: str('path', 4096) ?? '/', ...(host !== undefined ? { host } : {}), headers: headers as [string, string][] };
  return { ...q, http };
}
