import { parseArgs } from 'node:util';
import { runDemo } from '../dev/demo.js';
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
