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
