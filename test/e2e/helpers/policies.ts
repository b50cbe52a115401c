/** db accepts TCP 5432 from web only (everything else to db is denied). */
export const DB_POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: db-from-web
spec:
  endpointSelector:
    matchLabels: { app: db }
  ingress:
    - fromEndpoints:
        - matchLabels: { app: web }
      toPorts:
        - ports: [{ port: "5432", protocol: TCP }]
`;

/** web accepts GET on paths matching `paths` (a whole-value regex) from client on TCP 80, through the L7 proxy. */
export const l7Policy = (paths: string): string => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: web-l7
spec:
  endpointSelector:
    matchLabels: { app: web }
  ingress:
    - fromEndpoints:
        - matchLabels: { app: client }
      toPorts:
        - ports: [{ port: "80", protocol: TCP }]
          rules:
            http:
              - { method: GET, path: "${paths}" }
`;
