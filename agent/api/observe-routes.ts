import type { IncomingMessage, ServerResponse } from 'node:http';
import { isMonitorType, MONITOR_EVENT_TYPES, type BpfPolicyJson, type CounterJson, type CtEntryJson, type IpcacheEntryJson, type MonitorEventJson, type MonitorEventType, type SelectorJson } from './observe-types.js';
import { NOT_MINE, STREAMED, type ApiRoute } from './server.js';
import { ApiValidationError } from './validate.js';

export interface MonitorQuery {
  /** Absent: every type (datapath and L7). */
  readonly type?: MonitorEventType;
  /** Endpoint name or id. */
  readonly endpoint?: string;
}

/** What the observability routes read; the agent's Observer implements it (unknown endpoint: EndpointNotFoundError). */
export interface ObserveHandler {
  bpfPolicy(endpoint: string): BpfPolicyJson;
  ipcache(): IpcacheEntryJson[];
  conntrack(endpoint?: string): CtEntryJson[];
  counters(): CounterJson[];
  selectors(): SelectorJson[];
  monitor(q: MonitorQuery, cb: (e: MonitorEventJson) => void): { close(): void };
}

const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/** Rejects query parameters other than `allowed`. */
function query(url: URL, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of url.searchParams) {
    if (!allowed.includes(k)) throw new ApiValidationError(`unknown query parameter ${JSON.stringify(k)} (known: ${allowed.join(', ') || 'none'})`);
    out.set(k, v);
  }
  return out;
}

function monitorQuery(url: URL): MonitorQuery {
  const q = query(url, ['type', 'endpoint']);
  const type = q.get('type');
  if (type !== undefined && !isMonitorType(type)) throw new ApiValidationError(`type must be one of ${MONITOR_EVENT_TYPES.join(', ')}; got ${JSON.stringify(type)}`);
  const endpoint = q.get('endpoint');
  return { ...(type !== undefined ? { type } : {}), ...(endpoint !== undefined && endpoint !== '' ? { endpoint } : {}) };
}

/** Streams events as NDJSON until the client goes away (or the server closes). */
function streamMonitor(h: ObserveHandler, q: MonitorQuery, req: IncomingMessage, res: ServerResponse): typeof STREAMED {
  // A client that does not read must not grow the agent's memory: past the cap, events are skipped.
  const sub = h.monitor(q, (e) => {
    if (res.writableLength < MAX_BUFFERED_BYTES) res.write(`${JSON.stringify(e)}\n`);
  }); // throws (404) before any header
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  res.flushHeaders();
  const stop = (): void => sub.close();
  req.once('close', stop);
  res.once('close', stop);
  return STREAMED;
}

/**
 *   GET /v1/monitor?type=drop|policy-verdict|l7&endpoint=NAME|ID   (NDJSON stream; no type: all)
 *   GET /v1/bpf/policy/ENDPOINT   GET /v1/bpf/ipcache   GET /v1/bpf/ct?endpoint=   GET /v1/bpf/counters
 *   GET /v1/policy/selectors
 */
export function observeRoutes(h: ObserveHandler): ApiRoute {
  return async (req, res, url) => {
    const parts = url.pathname.split('/').filter((p) => p !== '');
    const path = parts.slice(1).join('/');
    const mine = parts[0] === 'v1' && (path === 'monitor' || path === 'policy/selectors' || parts[1] === 'bpf');
    if (!mine) return NOT_MINE;
    if (req.method !== 'GET') throw new ApiValidationError(`${req.method ?? '?'} not allowed on ${url.pathname} (GET only)`);
    if (path === 'monitor') return streamMonitor(h, monitorQuery(url), req, res);
    if (path === 'bpf/ct') return h.conntrack(query(url, ['endpoint']).get('endpoint'));
    query(url, []);
    if (path === 'policy/selectors') return h.selectors();
    if (path === 'bpf/ipcache') return h.ipcache();
    if (path === 'bpf/counters') return h.counters();
    if (parts[2] === 'policy' && parts.length === 4) return h.bpfPolicy(decodeURIComponent(parts[3]!));
    return NOT_MINE;
  };
}
