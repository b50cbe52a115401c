import { LabelSet } from './identity/index.js';
import { PolicyEngine } from './agent/calc/index.js';
import { parsePolicy } from './agent/policy/index.js';
const n = Number(process.env['N']);
const memo = Number(process.env['MEMO'] ?? 65536);
const rules: unknown[] = [];
for (let r = 0; r < 1000; r++) rules.push({ endpointSelector: { matchLabels: { 'k8s:role': `ep-${r % 200}` } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: `app-${r}` } }], toPorts: [{ ports: [{ port: String(8000 + (r % 50)), protocol: 'TCP' }] }] }] });
if (process.env['CLUSTER']) rules.push({ endpointSelector: { matchLabels: { 'k8s:role': 'ep-0' } }, ingress: [{ fromEntities: ['cluster'] }] });
const parsed = parsePolicy(JSON.stringify(rules), 'b.json').rules;
const lab = (i: number) => LabelSet.parse([`k8s:app=app-${i % 1000}`, `k8s:tier=t-${i % 7}`, `k8s:uid=u${i}`]);
for (const nn of [2000, n]) {
  const engine = new PolicyEngine({ memoSize: memo });
  for (let j = 0; j < 200; j++) engine.upsertEndpoint(`ep${j}`, LabelSet.parse([`k8s:role=ep-${j}`]));
  engine.upsertPolicy('b', parsed);
  for (let i = 0; i < nn; i += 1000) { engine.updateIdentities(Array.from({ length: 1000 }, (_, k) => [256 + i + k, lab(i + k)] as [number, LabelSet])); engine.flush(); }
  const ev = Array.from({ length: 2000 }, (_, k) => lab(nn + k));
  const a: number[] = [], b: number[] = [];
  for (let k = 0; k < 2000; k++) {
    const s = performance.now();
    engine.updateIdentities([[256 + nn + k, ev[k]!]]);
    const m = performance.now();
    engine.flush();
    b.push(performance.now() - m); a.push(m - s);
  }
  const med = (x: number[]) => (x.sort((p, q) => p - q)[1000]! * 1000).toFixed(1);
  if (nn === n) console.log(process.env['TAG'], n, 'update', med(a), 'flush', med(b));
}
