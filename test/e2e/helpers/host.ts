import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StatusJson } from '../../../agent/api/index.js';
import type { EtcdCluster } from '../../../agent/dev/etcd-cluster.js';
import { Datapath } from '../../../bpf/index.js';
import { ensureBpffs, sh, shQuiet } from '../../datapath/helpers/sh.js';
import { AgentProcess } from './agent-process.js';
import { eventually } from './eventually.js';
import { runWard, type CliResult } from '../../helpers/cli.js';

export type { CliResult } from '../../helpers/cli.js';

let seq = 0;

/**
 * One simulated host for end-to-end tests: a "host" netns (veths, routes, programs), endpoint
 * netns created on demand, an agent process (`ward agent --host-netns`) with its own pin root,
 * API socket and state dir. Names carry the pid and a counter. destroy() removes everything
 * it made, by name and PID, and is safe to call twice or after a failed setup.
 */
export class TestHost {
  readonly tag: string;
  readonly hostNs: string;
  readonly dir: string;
  readonly bpfRoot: string;
  readonly root: string;
  readonly node: string;
  readonly socket: string;
  readonly nodeIp: string;
  readonly endpointCidr: string;
  private readonly netns: string[] = [];
  agent: AgentProcess | undefined;

  /**
   * `index` picks the endpoint CIDR (10.201+index.0.0/24) and default node IP; hosts of one
   * cluster share `root` and are joined with TestHost.link (node IPs 10.97.0.x on that link).
   */
  constructor(
    private readonly etcd: EtcdCluster,
    private readonly opts: { readonly index?: number; readonly root?: string; readonly nodeIp?: string } = {},
  ) {
    seq++;
    const index = opts.index ?? 0;
    this.tag = `${process.pid.toString(36)}${seq.toString(36)}`;
    this.hostNs = `wh${this.tag}`;
    this.dir = `/tmp/ward-e2e-${this.tag}`;
    this.bpfRoot = `/sys/fs/bpf/ward-e2e-${this.tag}`;
    this.root = opts.root ?? `e2e-${this.tag}/`;
    this.node = `node-${this.tag}`;
    this.socket = join(this.dir, 'agent.sock');
    this.nodeIp = opts.nodeIp ?? `10.98.${index}.1`;
    this.endpointCidr = `10.${201 + index}.0.0/24`;
  }

  /** Joins two hosts' namespaces with a veth pair carrying their node IPs (same /24). */
  static link(a: TestHost, b: TestHost): void {
    sh('ip', ['link', 'add', 'name', 'wn0', 'netns', a.hostNs, 'type', 'veth', 'peer', 'name', 'wn0', 'netns', b.hostNs]);
    for (const h of [a, b]) {
      sh('ip', ['-n', h.hostNs, 'addr', 'add', `${h.nodeIp}/24`, 'dev', 'wn0']);
      sh('ip', ['-n', h.hostNs, 'link', 'set', 'wn0', 'up']);
    }
  }

  /** Strict reverse-path filtering in the host namespace, as some distributions set it. */
  strictRpFilter(): void {
    sh('nsenter', [`--net=/run/netns/${this.hostNs}`, 'sysctl', '-q', '-w', 'net.ipv4.conf.all.rp_filter=1', 'net.ipv4.conf.default.rp_filter=1']);
  }

  /** A sysctl's value in the host namespace. */
  sysctl(key: string): string {
    return sh('nsenter', [`--net=/run/netns/${this.hostNs}`, 'sysctl', '-n', key]).trim();
  }

  setup(): void {
    ensureBpffs();
    mkdirSync(this.dir, { recursive: true });
    sh('ip', ['netns', 'add', this.hostNs]);
    sh('ip', ['-n', this.hostNs, 'link', 'set', 'lo', 'up']);
    if (this.opts.nodeIp === undefined) sh('ip', ['-n', this.hostNs, 'addr', 'add', `${this.nodeIp}/32`, 'dev', 'lo']);
    writeFileSync(
      join(this.dir, 'agent.yaml'),
      [
        `node-name: ${this.node}`,
        `node-ip: ${this.nodeIp}`,
        `endpoint-cidr: ${this.endpointCidr}`,
        'etcd:',
        `  endpoints: [${this.etcd.endpoints.join(', ')}]`,
        `  root: ${this.root}`,
        `bpf-root: ${this.bpfRoot}`,
        `api-socket: ${this.socket}`,
        `state-dir: ${join(this.dir, 'state')}`,
        'log-level: debug',
        '',
      ].join('\n'),
    );
  }

  /** A new endpoint netns (empty: the agent wires it). Returns its name. */
  addNetns(suffix: string): string {
    const ns = `we${this.tag}${suffix}`;
    sh('ip', ['netns', 'add', ns]);
    this.netns.push(ns);
    return ns;
  }

  get logFile(): string {
    return join(this.dir, 'agent.log');
  }

  /** Starts the agent process and waits until `ward status` says in sync. */
  async startAgent(timeoutMs = 30_000): Promise<AgentProcess> {
    this.agent = AgentProcess.start(['--config', join(this.dir, 'agent.yaml'), `--host-netns=/run/netns/${this.hostNs}`], this.logFile);
    const up = await eventually(async () => (await this.status())?.inSync === true, timeoutMs, 100);
    if (!up) throw new Error(`agent did not come up in sync; see ${this.logFile}`);
    return this.agent;
  }

  ward(argv: readonly string[]): Promise<CliResult> {
    return runWard(argv, { WARD_API_SOCKET: this.socket, WARD_ETCD_ENDPOINTS: this.etcd.endpoints.join(','), WARD_ETCD_ROOT: this.root });
  }

  /** Writes a policy file into this host's dir and imports it (`ward policy import`). */
  async importPolicy(name: string, text: string): Promise<void> {
    const f = join(this.dir, `${name}.yaml`);
    writeFileSync(f, text);
    await this.wardOk(['policy', 'import', f]);
  }

  /** The L7 request decisions the agent logged ('l7 request', debug level in tests). */
  l7Events(): Record<string, unknown>[] {
    return readFileSync(this.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"l7 request"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async wardOk(argv: readonly string[]): Promise<string> {
    const r = await this.ward(argv);
    if (r.code !== 0) throw new Error(`ward ${argv.join(' ')} -> ${r.code}: ${r.err}${r.out}`);
    return r.out;
  }

  async status(): Promise<StatusJson | undefined> {
    const r = await this.ward(['status', '-o', 'json']);
    return r.out === '' ? undefined : (JSON.parse(r.out) as StatusJson);
  }

  /** The identity this host's kernel ipcache holds for an IPv4 address (/32 entry), if any. */
  ipcacheIdentity(ip: string): number | undefined {
    const key = ['20', '00', '00', '00', ...ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))];
    try {
      const out = sh('bpftool', ['-j', 'map', 'lookup', 'pinned', join(this.bpfRoot, 'ward_ipcache'), 'key', 'hex', ...key]);
      const v = (JSON.parse(out) as { value: string[] }).value.slice(0, 4).map((x) => parseInt(x, 16));
      return (v[0]! | (v[1]! << 8) | (v[2]! << 16) | (v[3]! << 24)) >>> 0;
    } catch {
      return undefined;
    }
  }

  /** Kills the agent (by PID), deletes the namespaces (with their veths), pins and files. */
  destroy(): void {
    this.agent?.close();
    for (const ns of [...this.netns, this.hostNs]) shQuiet('ip', ['netns', 'del', ns]);
    Datapath.removePins(this.bpfRoot);
    if (process.env['WARD_E2E_KEEP'] !== '1') rmSync(this.dir, { recursive: true, force: true });
  }
}
