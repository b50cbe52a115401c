import { execFile } from 'node:child_process';
import { OfflineTrace } from '../calc/index.js';
import type { ParsedPolicy } from '../policy/index.js';
import { renderTable } from '../cli/output.js';
import { netnsPath } from './topology.js';

export interface MatrixSource {
  readonly name: string;
  readonly netns: string;
}

export interface MatrixTarget {
  readonly name: string;
  readonly ip: string;
  readonly port: number;
}

/** Rows: sources; columns: targets; undefined where source and target are one workload. */
export type Matrix = (boolean | undefined)[][];

// Runs inside the source netns: TCP connects to every target at once, prints [true|false...].
const PROBE = `const net=require('net');const {timeout,targets}=JSON.parse(process.argv[1]);
Promise.all(targets.map(([ip,port])=>new Promise((r)=>{const s=net.connect({host:ip,port});
const done=(v)=>{s.destroy();r(v)};s.setTimeout(timeout,()=>done(false));s.once('connect',()=>done(true));
s.once('error',()=>done(false));}))).then((v)=>process.stdout.write(JSON.stringify(v)));`;

/** Real TCP connects from `netns` to each target (a dropped SYN counts as denied after `timeoutMs`). */
export function probeFrom(netns: string, targets: readonly { ip: string; port: number }[], timeoutMs: number): Promise<boolean[]> {
  const arg = JSON.stringify({ timeout: timeoutMs, targets: targets.map((t) => [t.ip, t.port]) });
  return new Promise((resolve, reject) => {
    execFile('nsenter', [`--net=${netnsPath(netns)}`, '--', process.execPath, '-e', PROBE, arg], { timeout: timeoutMs + 10_000 }, (err, stdout) => {
      if (err !== null) return reject(new Error(`probe from ${netns}: ${err.message}`, { cause: err }));
      try {
        resolve(JSON.parse(stdout) as boolean[]);
      } catch (cause) {
        reject(new Error(`probe from ${netns}: bad output ${JSON.stringify(stdout)}`, { cause }));
      }
    });
  });
}

export async function probeMatrix(sources: readonly MatrixSource[], targets: readonly MatrixTarget[], timeoutMs: number): Promise<Matrix> {
  return Promise.all(
    sources.map(async (s) => {
      const cols = targets.map((t, i) => ({ t, i })).filter(({ t }) => t.name !== s.name);
      const res = await probeFrom(s.netns, cols.map(({ t }) => t), timeoutMs);
      const row: (boolean | undefined)[] = targets.map(() => undefined);
      cols.forEach(({ i }, k) => (row[i] = res[k]));
      return row;
    }),
  );
}

/** What the policies say (OfflineTrace over the workloads' labels): the matrix to expect. */
export function expectedMatrix(
  workloads: readonly { name: string; labels: readonly string[]; ip: string }[],
  policies: readonly ParsedPolicy[],
  sources: readonly MatrixSource[],
  targets: readonly MatrixTarget[],
): Matrix {
  const trace = new OfflineTrace(workloads, policies);
  return sources.map((s) => targets.map((t) => (t.name === s.name ? undefined : trace.trace({ from: s.name, to: t.name, dport: t.port, protocol: 'TCP' }).verdict === 'allowed')));
}

export function sameMatrix(a: Matrix, b: Matrix): boolean {
  return a.length === b.length && a.every((row, i) => row.length === b[i]?.length && row.every((v, j) => v === b[i]?.[j]));
}

/** The table; a cell that differs from `expected` gets a `!`. */
export function renderMatrix(sources: readonly MatrixSource[], targets: readonly MatrixTarget[], m: Matrix, expected?: Matrix): string {
  const header = ['FROM \\ TO', ...targets.map((t) => `${t.name}:${t.port}`)];
  const rows = sources.map((s, i) => [
    s.name,
    ...targets.map((_, j) => {
      const v = m[i]?.[j];
      if (v === undefined) return '-';
      const bad = expected !== undefined && expected[i]?.[j] !== v;
      return `${v ? 'allow' : 'deny'}${bad ? '!' : ''}`;
    }),
  ]);
  return renderTable(header, rows);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Probes until the matrix equals `expected` or `timeoutMs` passes; returns the last probe. */
export async function waitForMatrix(
  sources: readonly MatrixSource[],
  targets: readonly MatrixTarget[],
  expected: Matrix,
  opts: { timeoutMs: number; probeTimeoutMs: number },
): Promise<{ matrix: Matrix; matches: boolean; elapsedMs: number }> {
  const t0 = Date.now();
  for (;;) {
    const matrix = await probeMatrix(sources, targets, opts.probeTimeoutMs);
    const matches = sameMatrix(matrix, expected);
    if (matches || Date.now() - t0 > opts.timeoutMs) return { matrix, matches, elapsedMs: Date.now() - t0 };
    await sleep(100);
  }
}
