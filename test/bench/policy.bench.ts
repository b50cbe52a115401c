/**
 * npm run bench:policy — the incremental policy core (pure, in-process).
 *
 * Setup per N (N = 1,000 / 10,000 / 100,000 cluster identities): 200 local endpoints and
 * 1,000 rules (L3/L4 ingress from label selectors, some multi-value In / NotIn selectors,
 * some egress rules, two rules allowing the `cluster` entity on UDP 53).
 *   per-event: add one new identity, flush; median time and map-entry changes per event.
 *   full:      recompute every endpoint's policy from the current selections (what a
 *              non-incremental engine does per change); median time and entries computed.
 *   memory:    heap growth per identity (engine state only; label sets pre-built), with gc.
 * initial: one endpoint selected by 1,000 L3 ingress rules with 3,000 identities loaded
 *          (the case of Cilium's BenchmarkRegenerateL3IngressPolicyRules, ~2 ms in Go): a
 *          fresh engine each run (cold selector cache), median of 20 after 10 warm-up runs.
 * Last stdout line: one JSON object with the keys the issue names.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { LabelSet } from '../../identity/index.js';
import { PolicyEngine } from '../../agent/calc/index.js';
import { parsePolicy, type PolicyRule } from '../../agent/policy/index.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const ENDPOINTS = 200;
const RULES = 1000;
const SIZES = [1000, 10000, 100000] as const;
const EVENTS = Number(process.env['WARD_BENCH_EVENTS'] ?? 1000);
const FULL_RUNS = 3;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function identityLabels(i: number): LabelSet {
  return LabelSet.parse([`k8s:app=app-${i % 1000}`, `k8s:tier=t-${i % 7}`, `k8s:uid=u${i}`]);
}

function benchRules(): PolicyRule[] {
  const rules: unknown[] = [];
  for (let r = 0; r < RULES; r++) {
    const endpointSelector = { matchLabels: { 'k8s:role': `ep-${r % ENDPOINTS}` } };
    if (r < 2) {
      rules.push({ endpointSelector, ingress: [{ fromEntities: ['cluster'], toPorts: [{ ports: [{ port: '53', protocol: 'UDP' }] }] }] });
    } else if (r % 25 === 0) {
      rules.push({ endpointSelector, egress: [{ toEndpoints: [{ matchLabels: { 'k8s:app': `app-${r}` } }] }] });
    } else if (r % 10 === 0) {
      const sel = { matchExpressions: [{ key: 'k8s:app', operator: 'In', values: [`app-${r}`, `app-${(r + 1) % 1000}`] }, { key: 'tier', operator: 'NotIn', values: ['t-0'] }] };
      rules.push({ endpointSelector, ingress: [{ fromEndpoints: [sel], toPorts: [{ ports: [{ port: '9000', endPort: 9015, protocol: 'TCP' }] }] }] });
    } else {
      rules.push({ endpointSelector, ingress: [{ fromEndpoints: [{ matchLabels: { app: `app-${r}` } }], toPorts: [{ ports: [{ port: String(8000 + (r % 50)), protocol: 'TCP' }] }] }] });
    }
  }
  return [...parsePolicy(JSON.stringify(rules), 'bench.json').rules];
}

function heap(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

interface SizeResult {
  n: number;
  perEventMs: number;
  perEventP90Ms: number;
  perEventChanges: number;
  fullMs: number;
  fullEntries: number;
  bytesPerIdentity: number;
  loadMs: number;
}

function runSize(n: number, rules: PolicyRule[]): SizeResult {
  const labels = Array.from({ length: n }, (_, i) => identityLabels(i));
  const eventLabels = Array.from({ length: EVENTS }, (_, k) => identityLabels(n + k));
  const engine = new PolicyEngine();
  for (let j = 0; j < ENDPOINTS; j++) engine.upsertEndpoint(`ep${j}`, LabelSet.parse([`k8s:role=ep-${j}`]));
  engine.upsertPolicy('bench', rules);
  engine.flush();
  const h0 = heap();
  const t0 = performance.now();
  for (let i = 0; i < n; i += 1000) {
    const batch: [number, LabelSet][] = [];
    for (let k = i; k < Math.min(n, i + 1000); k++) batch.push([256 + k, labels[k]!]);
    engine.updateIdentities(batch);
    engine.flush();
  }
  const loadMs = performance.now() - t0;
  const h1 = heap();

  const times: number[] = [];
  const changes: number[] = [];
  for (let k = 0; k < EVENTS; k++) {
    const id = 256 + n + k;
    const s = performance.now();
    engine.updateIdentities([[id, eventLabels[k]!]]);
    const r = engine.flush();
    times.push(performance.now() - s);
    changes.push(r.stats.entryChanges);
  }
  const warm = Math.floor(EVENTS / 10);
  const fullTimes: number[] = [];
  let fullEntries = 0;
  for (let k = 0; k < FULL_RUNS; k++) {
    const s = performance.now();
    engine.recomputeAll();
    engine.flush();
    fullTimes.push(performance.now() - s);
  }
  for (const id of engine.endpointIds()) fullEntries += engine.mapSize(id);
  const sortedT = times.slice(warm).sort((a, b) => a - b);
  return {
    n,
    perEventMs: median(times.slice(warm)),
    perEventP90Ms: sortedT[Math.floor(sortedT.length * 0.9)]!,
    perEventChanges: median(changes.slice(warm)),
    fullMs: median(fullTimes),
    fullEntries,
    bytesPerIdentity: Math.round((h1 - h0) / n),
    loadMs,
  };
}

function initial(): { ms: number; entries: number } {
  const rules: unknown[] = [];
  for (let r = 0; r < RULES; r++) rules.push({ endpointSelector: { matchLabels: { 'k8s:role': 'target' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: `app-${r % 1000}` } }] }] });
  const parsed = parsePolicy(JSON.stringify(rules), 'initial.json').rules;
  const labels = Array.from({ length: 3000 }, (_, i) => [256 + i, identityLabels(i)] as [number, LabelSet]);
  const times: number[] = [];
  let entries = 0;
  for (let k = 0; k < 30; k++) {
    const engine = new PolicyEngine();
    engine.updateIdentities(labels);
    engine.upsertEndpoint('target', LabelSet.parse(['k8s:role=target']));
    engine.flush();
    gc();
    const s = performance.now();
    engine.upsertPolicy('initial', parsed);
    engine.flush();
    times.push(performance.now() - s);
    entries = engine.mapSize('target');
  }
  return { ms: median(times.slice(10)), entries };
}

// Each measurement runs in its own child process (same script, WARD_BENCH_PART set), so every
// size starts from the same JIT and heap state: one process running 1k, then 10k, then 100k
// favours whichever size runs first.
const part = process.env['WARD_BENCH_PART'];
if (part !== undefined) {
  const out = part === 'initial' ? initial() : (runSize(2000, benchRules()), runSize(Number(part), benchRules()));
  console.log(JSON.stringify(out));
} else {
  const child = (p: string): unknown => {
    const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], { env: { ...process.env, WARD_BENCH_PART: p }, encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`bench part ${p} failed: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  };
  const init = child('initial') as { ms: number; entries: number };
  const results = SIZES.map((n) => child(String(n)) as SizeResult);
  report(init, results);
}

function report(init: { ms: number; entries: number }, results: SizeResult[]): void {
  const at = (n: number): SizeResult => results.find((r) => r.n === n)!;
  const scaleRatio = at(100000).perEventMs / at(1000).perEventMs;
  const speedup = at(100000).fullMs / at(100000).perEventMs;
  const f = (x: number, d = 3): string => x.toFixed(d);
  const rows = [
    ['identities', 'per-event ms (p50)', 'p90', 'changes/event', 'full recompute ms', 'entries (all eps)', 'bytes/identity', 'load ms'],
    ...results.map((r) => [String(r.n), f(r.perEventMs), f(r.perEventP90Ms), String(r.perEventChanges), f(r.fullMs, 1), String(r.fullEntries), String(r.bytesPerIdentity), f(r.loadMs, 0)]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  console.log(`policy engine: ${ENDPOINTS} local endpoints, ${RULES} rules, ${EVENTS} identity-add events per size (median after warm-up), one process per size`);
  for (const r of rows) console.log(r.map((c, i) => c.padStart(widths[i]!)).join('  '));
  console.log(`scale ratio (per-event 100k / 1k): ${f(scaleRatio, 2)}   (target <= 1.5)`);
  console.log(`speedup (full recompute / per-event at 100k): ${f(speedup, 0)}x   (target >= 100)`);
  console.log(`initial: 1000 rules x 3000 identities, one endpoint: ${f(init.ms, 2)} ms, ${init.entries} entries   (target < 10 ms; Cilium 1.6 ~2 ms in Go)`);
  console.log(
    JSON.stringify({
      bench: 'policy',
      endpoints: ENDPOINTS,
      rules: RULES,
      per_event_ms: Object.fromEntries(results.map((r) => [String(r.n), Number(f(r.perEventMs, 4))])),
      per_event_changes: Object.fromEntries(results.map((r) => [String(r.n), r.perEventChanges])),
      full_recompute_ms: Object.fromEntries(results.map((r) => [String(r.n), Number(f(r.fullMs, 2))])),
      full_recompute_entries: Object.fromEntries(results.map((r) => [String(r.n), r.fullEntries])),
      scale_ratio: Number(f(scaleRatio, 3)),
      speedup: Number(f(speedup, 1)),
      initial_ms: Number(f(init.ms, 3)),
      bytes_per_identity: at(100000).bytesPerIdentity,
    }),
  );
}
