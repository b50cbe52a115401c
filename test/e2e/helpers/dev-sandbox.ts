import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { DevState } from '../../../agent/dev/dev-state.js';
import { stopProc, type DevProc } from '../../../agent/dev/procs.js';

const REPO = join(import.meta.dirname, '..', '..', '..');
const ENTRY = join(import.meta.dirname, 'ward-main.ts');

export interface DevRun {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

export interface DevSandbox {
  /** The `ward dev` cluster name (unique per test process). */
  readonly name: string;
  /** Scratch folder holding the files given to useDevSandbox. */
  readonly tmp: string;
  readonly env: NodeJS.ProcessEnv;
  /** `ward ...` from the sources in a child process (as a user runs it: the cluster must outlive it). */
  ward(args: readonly string[], extraEnv?: NodeJS.ProcessEnv): Promise<DevRun>;
  /** The cluster's state.json, remembered for the cleanup after a failed step. */
  readState(): DevState;
}

/** Every process of a dev cluster's state (workloads, agents, etcd members). */
export function devProcs(s: DevState): (DevProc | undefined)[] {
  return [...s.workloads.map((w) => w.proc), ...s.hosts.map((h) => h.agent), ...s.etcd.members.map((m) => m.proc)];
}

/**
 * A private run/data directory pair for `ward dev` in one test file: writes `files` into a
 * scratch folder before the tests, and afterwards runs `ward dev down`, then removes by hand
 * whatever a failed step left (processes by recorded PID, namespaces, pins, data).
 */
export function useDevSandbox(prefix: string, files: Readonly<Record<string, string>>, opts: { inheritEtcdEnv?: boolean } = {}): DevSandbox {
  const tag = process.pid.toString(36);
  const name = `${prefix}${tag}`.slice(0, 12);
  const tmp = `/tmp/ward-${prefix}-test-${tag}`;
  const inherited = opts.inheritEtcdEnv === false ? Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WARD_ETCD_'))) : process.env;
  const env: NodeJS.ProcessEnv = { ...inherited, WARD_DEV_RUN_DIR: join(tmp, 'run'), WARD_DEV_DATA_DIR: `/dev/shm/ward-${prefix}-test-${tag}` };
  let state: DevState | undefined;

  const ward = (args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<DevRun> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], { cwd: REPO, env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.once('close', (code) => resolve({ code, out: Buffer.concat(out).toString(), err: Buffer.concat(err).toString() }));
    });

  beforeAll(() => {
    mkdirSync(tmp, { recursive: true });
    for (const [f, text] of Object.entries(files)) writeFileSync(join(tmp, f), text);
  });

  afterAll(async () => {
    await ward(['dev', 'down', '--name', name]);
    if (state !== undefined) {
      for (const p of devProcs(state)) await stopProc(p, { termMs: 0, group: true });
      for (const ns of state.netns) if (existsSync(`/run/netns/${ns}`)) spawnSync('ip', ['netns', 'del', ns]);
      for (const p of state.pinRoots) rmSync(p, { recursive: true, force: true });
      rmSync(state.dataDir, { recursive: true, force: true });
    }
    rmSync(tmp, { recursive: true, force: true });
    rmSync(env['WARD_DEV_DATA_DIR']!, { recursive: true, force: true });
  });

  return {
    name,
    tmp,
    env,
    ward,
    readState: () => (state = JSON.parse(readFileSync(join(env['WARD_DEV_RUN_DIR']!, name, 'state.json'), 'utf8')) as DevState),
  };
}
