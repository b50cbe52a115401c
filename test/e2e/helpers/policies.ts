/** `app` accepts TCP `port` from `peer`, L3/L4 only (no HTTP rules: no proxy). */
export const l4Policy = (name: string, app: string, peer: string, port: number): string => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: ${name}
spec:
  endpointSelector:
    matchLabels: { app: ${app} }
  ingress:
    - fromEndpoints:
        - matchLabels: { app: ${peer} }
      toPorts:
        - ports: [{ port: "${port}", protocol: TCP }]
`;

/** db accepts TCP 5432 from web only (everything else to db is denied). */
export const DB_POLICY = l4Policy('db-from-web', 'db', 'web', 5432);

export interface L7PolicyOptions {
  readonly name?: string;
  /** `app` label of the endpoints the policy selects (default web). */
  readonly app?: string;
  /** `app` label of the peer (default client). */
  readonly peer?: string;
  readonly direction?: 'ingress' | 'egress';
}

/**
 * By default web accepts GET on paths matching `paths` (a whole-value regex) from client on TCP
 * 80, through the L7 proxy; options change the name, the selected app, the peer and the direction.
 */
export const l7Policy = (paths: string, o: L7PolicyOptions = {}): string => {
  const direction = o.direction ?? 'ingress';
  return `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: ${o.name ?? 'web-l7'}
spec:
  endpointSelector:
    matchLabels: { app: ${o.app ?? 'web'} }
  ${direction}:
    - ${direction === 'ingress' ? 'fromEndpoints' : 'toEndpoints'}:
        - matchLabels: { app: ${o.peer ?? 'client'} }
      toPorts:
        - ports: [{ port: "80", protocol: TCP }]
          rules:
            http:
              - { method: GET, path: "${paths}" }
`;
};
