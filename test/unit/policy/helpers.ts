import { OfflineTrace, type TraceEndpointSpec, type TraceProtocol } from '../../../agent/calc/index.js';
import { parsePolicy, type HttpRequest } from '../../../agent/policy/index.js';

export const ENDPOINTS: TraceEndpointSpec[] = [
  { name: 'frontend', labels: ['k8s:app=frontend', 'env=prod'], ip: '10.0.1.10' },
  { name: 'backend', labels: ['k8s:app=backend', 'env=prod'], ip: '10.0.1.11' },
  { name: 'db', labels: ['k8s:app=db', 'env=prod'], ip: '10.0.1.12' },
  { name: 'dev', labels: ['k8s:app=frontend', 'env=dev'], ip: '10.0.2.10' },
  { name: 'other', labels: ['container:app=backend'], ip: '10.0.3.10' },
];

/** Builds an offline world from YAML policy texts. */
export function world(...policies: string[]): OfflineTrace {
  return new OfflineTrace(
    ENDPOINTS,
    policies.map((p, i) => parsePolicy(p, `p${i}.yaml`)),
  );
}

export function verdict(w: OfflineTrace, from: string, to: string, dport: number, protocol: TraceProtocol = 'TCP', http?: Partial<HttpRequest>): string {
  const req = http === undefined ? undefined : { method: 'GET', path: '/', headers: [], ...http };
  return w.trace({ from, to, dport, protocol, ...(req !== undefined ? { http: req } : {}) }).verdict;
}
