import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { runDemo } from '../dev/demo.js';
import { devDown } from '../dev/dev-down.js';
import { devEtcdKill, devEtcdStart, devExec, devStatus, resolveCluster } from '../dev/dev-ops.js';
import { devBases, listClusters } from '../dev/dev-state.js';
import { devUp } from '../dev/dev-up.js';
import { requireRoot } from '../dev/topology.js';
import { UsageError, type Command } from './command.js';
import { identityListCommand } from './identity-commands.js';

const DEMO_USAGE = `Usage: ward dev demo [--endpoints FILE] [--policy FILE] [--ports 80,5432,...] [--hold]

Runs ward's main job on an embedded default: starts a local one-member etcd (tmpfs), allocates
identities for the sample workloads from two simulated nodes, prints them with
\`ward identity list\`, prints the sample policy's connectivity matrix, then stops everything.
  --endpoints FILE   workloads (default examples/endpoints.json)
  --policy FILE      policy (default examples/policy.yaml)
  --ports LIST       TCP ports probed in the matrix (default 8080,5432)
  --hold             keep etcd running until Ctrl-C
`;

export const devDemoCommand: Command = {
  path: ['dev', 'demo'],
  summary: 'run a local etcd, allocate sample identities, show policy connectivity',
  usage: DEMO_USAGE,
  run: async (ctx) => {
    const { values } = parseArgs({
      args: [...ctx.argv],
      options: {
        endpoints: { type: 'string', default: 'examples/endpoints.json' },
        policy: { type: 'string', default: 'examples/policy.yaml' },
        ports: { type: 'string', default: '8080,5432' },
        hold: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    });
    const ports = values.ports.split(',').map((p) => Number(p.trim()));
    if (ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) throw new UsageError(`--ports: ${JSON.stringify(values.ports)} is not a list of ports 1..65535`);
    const ac = new AbortController();
    const stop = (): void => ac.abort();
    if (values.hold) process.once('SIGINT', stop).once('SIGTERM', stop);
    try {
      return await runDemo({
        endpointsFile: values.endpoints,
        policyFile: values.policy,
        ports,
        out: ctx.stdout,
        listIdentities: (etcd) => identityListCommand.run({ ...ctx, argv: ['--etcd', etcd] }),
        ...(values.hold ? { hold: ac.signal } : {}),
      });
    } finally {
      process.off('SIGINT', stop).off('SIGTERM', stop);
    }
  },
};

/** examples/cluster.yaml of this checkout (sources: agent/cli; compiled: dist/agent/cli). */
function sampleClusterFile(): string | undefined {
  for (let d = import.meta.dirname, i = 0; i < 5; i++, d = dirname(d)) {
    const f = join(d, 'examples', 'cluster.yaml');
    if (existsSync(f)) return f;
  }
  return undefined;
}

const lineOut = (ctx: { stdout: NodeJS.WritableStream }) => (l: string): void => void ctx.stdout.write(`${l}\n`);

const NAME_HELP = `  --name NAME            cluster name (default: the only cluster up, else "ward")`;

export const devUpCommand: Command = {
  path: ['dev', 'up'],
  summary: 'bring up a local cluster: etcd, hosts as netns, agents, workloads, policy',
  usage: `Usage: ward dev up [-f cluster.yaml] [--name NAME] [--etcd-members 1|3] [--etcd-port PORT] [--tls]

Brings up a local cluster on this machine (root): etcd members on loopback (data on tmpfs), a
netns per host joined by a bridge (in its own netns), an agent process per host, the workloads
of the file (endpoint through the agent, command inside their netns), then prints the TCP
connectivity matrix before and after importing the file's policy. Everything keeps running
after this command returns; a cluster of the same name is torn down first.
  -f, --file FILE        cluster file (default examples/cluster.yaml)
  --name NAME            cluster name (default: the file's name, else "ward"); prefixes netns names
  --etcd-members N       etcd members (default: the file's etcd.members, else 1; 3 for chaos)
  --etcd-port PORT       client port of member 0 if free, member i gets PORT+i*10000
                         (default 2379; 0: free ports)
  --log-level LEVEL      agents' log level (default info)
  --tls                  etcd over mutual TLS only: a CA and certificates from
                         deploy/make-certs.sh in the state dir (pki/), agents use theirs

State, logs and agent sockets: /run/ward-dev/NAME ($WARD_DEV_RUN_DIR); etcd data:
/dev/shm/ward-dev/NAME ($WARD_DEV_DATA_DIR).`,
  async run(ctx) {
    const { values, positionals } = parseArgs({
      args: [...ctx.argv],
      options: {
        file: { type: 'string', short: 'f' },
        name: { type: 'string' },
        'etcd-members': { type: 'string' },
        'etcd-port': { type: 'string' },
        'log-level': { type: 'string' },
        tls: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])} (the cluster file goes after -f)`);
    const file = values.file ?? sampleClusterFile();
    if (file === undefined) throw new UsageError('-f: no cluster file given and examples/cluster.yaml not found');
    const num = (flag: string, v: string | undefined, min: number, max: number): number | undefined => {
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${flag}: ${JSON.stringify(v)} must be an integer ${min}..${max}`);
      return n;
    };
    const etcdMembers = num('etcd-members', values['etcd-members'], 1, 5);
    const etcdPort = num('etcd-port', values['etcd-port'], 0, 25535);
    const argv1 = process.argv[1];
    if (argv1 === undefined) throw new UsageError('cannot tell how this ward was started (no script path)');
    const r = await devUp({
      file,
      ...(values.name !== undefined ? { name: values.name } : {}),
      ...(etcdMembers !== undefined ? { etcdMembers } : {}),
      ...(etcdPort !== undefined ? { etcdPort } : {}),
      ...(values['log-level'] !== undefined ? { agentLogLevel: values['log-level'] } : {}),
      ...(values.tls === true ? { tls: true } : {}),
      // Agents run as this same ward (compiled, or from the sources under tsx in tests).
      ward: { cmd: process.execPath, args: [...process.execArgv, argv1], cwd: process.cwd() },
      out: lineOut(ctx),
      bases: devBases(ctx.env),
    });
    return r.beforeMatches && r.afterMatches !== false ? 0 : 1;
  },
};

export const devDownCommand: Command = {
  path: ['dev', 'down'],
  summary: 'remove a local cluster: processes, netns, links, pins, data (idempotent)',
  usage: `Usage: ward dev down [--name NAME | --all]

Stops the workloads and agents (SIGTERM, then SIGKILL) and the etcd members (SIGKILL), by the
PIDs recorded at \`ward dev up\`, then deletes the netns (with their links), BPF pin roots, etcd
data and the state dir. Safe to run twice and after a crashed up.
${NAME_HELP}
  --all                  every cluster up`,
  async run(ctx) {
    const { values } = parseArgs({ args: [...ctx.argv], options: { name: { type: 'string' }, all: { type: 'boolean', default: false } }, strict: true, allowPositionals: false });
    requireRoot();
    const bases = devBases(ctx.env);
    const say = lineOut(ctx);
    const all = listClusters(bases);
    const names = values.all ? all : [values.name ?? (all.length === 1 ? all[0]! : 'ward')];
    if (names.length === 0) say('no ward dev cluster is up');
    for (const name of names) {
      const done = await devDown(name, { bases, out: (l) => say(`   ${l}`) });
      say(done ? `cluster ${name} removed` : `no ward dev cluster named "${name}" (nothing to do)`);
    }
    return 0;
  },
};

export const devExecCommand: Command = {
  path: ['dev', 'exec'],
  summary: "run a command inside a workload's network namespace",
  usage: `Usage: ward dev exec [--name NAME] WORKLOAD -- CMD [ARGS...]

Runs CMD in the workload's netns (nsenter) with this terminal's stdin/stdout/stderr; exits with
CMD's status. Example: ward dev exec web -- nc -zv 10.200.1.20 8080
${NAME_HELP}`,
  async run(ctx) {
    const sep = ctx.argv.indexOf('--');
    const head = sep < 0 ? ctx.argv : ctx.argv.slice(0, sep);
    const { values, positionals } = parseArgs({ args: [...head], options: { name: { type: 'string' } }, strict: true, allowPositionals: true });
    const workload = positionals[0];
    if (workload === undefined) throw new UsageError('give the WORKLOAD, then -- and the command');
    const argv = sep < 0 ? positionals.slice(1) : [...positionals.slice(1), ...ctx.argv.slice(sep + 1)];
    if (argv.length === 0) throw new UsageError('give a command after --, e.g. ward dev exec web -- ip addr');
    requireRoot();
    return devExec(resolveCluster(values.name, devBases(ctx.env)), workload, argv);
  },
};

export const devEtcdCommand: Command = {
  path: ['dev', 'etcd'],
  summary: 'kill (SIGKILL) or start again an etcd member of a local cluster',
  usage: `Usage: ward dev etcd kill|start N [--name NAME]

kill: SIGKILL member N by its recorded PID. start: run member N again from its data dir, on the
same ports (it rejoins the cluster).
${NAME_HELP}`,
  async run(ctx) {
    const { values, positionals } = parseArgs({ args: [...ctx.argv], options: { name: { type: 'string' } }, strict: true, allowPositionals: true });
    const [action, n, ...extra] = positionals;
    if ((action !== 'kill' && action !== 'start') || n === undefined || extra.length > 0) throw new UsageError('give kill or start, then the member index N');
    const i = Number(n);
    if (!/^\d+$/.test(n)) throw new UsageError(`member index ${JSON.stringify(n)} must be a number (0, 1, ...)`);
    requireRoot();
    const s = resolveCluster(values.name, devBases(ctx.env));
    if (action === 'kill') await devEtcdKill(s, i, lineOut(ctx));
    else await devEtcdStart(s, i, lineOut(ctx));
    return 0;
  },
};

export const devStatusCommand: Command = {
  path: ['dev', 'status'],
  summary: 'show a local cluster: etcd members, agents, workloads',
  usage: `Usage: ward dev status [--name NAME]

Exit status 1 when a member, agent or workload process is down, unhealthy or not in sync.
${NAME_HELP}`,
  async run(ctx) {
    const { values } = parseArgs({ args: [...ctx.argv], options: { name: { type: 'string' } }, strict: true, allowPositionals: false });
    return devStatus(resolveCluster(values.name, devBases(ctx.env)), (t) => void ctx.stdout.write(t));
  },
};

export const DEV_COMMANDS: readonly Command[] = [devDemoCommand, devUpCommand, devDownCommand, devExecCommand, devEtcdCommand, devStatusCommand];
