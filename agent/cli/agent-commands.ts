import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { AGENT_FIELDS, loadAgentConfig, type AgentConfig } from '../config/index.js';
import { Agent, createAgentLogger, notifyReady } from '../daemon/index.js';
import type { StatusJson } from '../api/index.js';
import { UsageError, type Command } from './command.js';
import { API_SOCKET_HELP, apiClientFrom } from './api-flags.js';
import { parseOutputFormat } from './output.js';
import { verboseStatus } from './status-verbose.js';

const FIELD_HELP = Object.values(AGENT_FIELDS)
  .map((f) => `  --${f.flag.padEnd(20)} ${f.env.padEnd(22)} ${f.help}${'default' in f ? ` (default ${String(f.default)})` : ''}`)
  .join('\n');

function readConfig(argv: readonly string[], env: NodeJS.ProcessEnv): { config: AgentConfig; hostNetns: string | undefined } {
  const options: Record<string, { type: 'string' }> = { config: { type: 'string' }, 'host-netns': { type: 'string' } };
  for (const f of Object.values(AGENT_FIELDS)) options[f.flag] = { type: 'string' };
  const { values, positionals } = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const v = values as Record<string, string | undefined>;
  const file = v['config'];
  let text: string | undefined;
  if (file !== undefined) {
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`--config: cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const flags: Record<string, string | undefined> = {};
  for (const f of Object.values(AGENT_FIELDS)) flags[f.flag] = v[f.flag];
  const hostNetns = v['host-netns'];
  if (hostNetns !== undefined && !hostNetns.startsWith('/')) throw new UsageError('--host-netns must be an absolute path (e.g. /run/netns/host1)');
  return { config: loadAgentConfig({ ...(file !== undefined && text !== undefined ? { file: { name: file, text } } : {}), env, flags }), hostNetns };
}

export const agentCommand: Command = {
  path: ['agent'],
  summary: 'run the node agent in the foreground (JSON logs on stdout)',
  usage: `Usage: ward agent [--config FILE] [flags]

Runs the agent until SIGTERM or SIGINT. Settings come from the YAML file, then WARD_*
environment variables, then flags (later wins):

  --config FILE          YAML settings file
  --host-netns PATH      put veths, routes and programs in this netns instead of the agent's
                         own (local dev clusters: the agent stays where etcd is reachable)
${FIELD_HELP}`,
  async run(ctx) {
    const { config, hostNetns } = readConfig(ctx.argv, ctx.env);
    const logger = createAgentLogger(config.logLevel);
    const stop = new AbortController();
    const onSignal = (sig: NodeJS.Signals): void => {
      logger.info({ signal: sig }, 'stopping');
      stop.abort();
    };
    process.once('SIGTERM', onSignal).once('SIGINT', onSignal);
    try {
      const agent = await Agent.start({ config, logger, leaseTtlSeconds: config.leaseTtlSeconds, ...(hostNetns !== undefined ? { hostNetns } : {}) });
      void agent.whenInSync().then(() => notifyReady(ctx.env, logger));
      await new Promise<void>((resolve) => {
        if (stop.signal.aborted) resolve();
        stop.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      await agent.close();
      return 0;
    } catch (err) {
      logger.fatal({ err: err instanceof Error ? err.message : String(err) }, 'agent failed');
      throw err;
    } finally {
      process.off('SIGTERM', onSignal).off('SIGINT', onSignal);
    }
  },
};

function renderStatus(s: StatusJson): string {
  const yes = (b: boolean): string => (b ? 'yes' : 'no');
  const sync = (Object.entries(s.sync) as [string, boolean][]).map(([k, v]) => `${k}=${yes(v)}`).join(' ');
  return [
    `node:        ${s.node} (${s.nodeIp}, endpoints ${s.endpointCidr})`,
    `etcd:        ${s.etcd.connected ? 'connected' : `UNREACHABLE (${s.etcd.error ?? 'no answer'})`} ${s.etcd.endpoints.join(',')}`,
    `state:       ${s.degraded ? 'degraded (fail-static: enforcing the last known state)' : s.inSync ? 'in sync' : 'syncing'}`,
    `caches:      ${sync}`,
    `endpoints:   ${s.endpoints}${s.lockedDownEndpoints.length > 0 ? ` (locked down: ${s.lockedDownEndpoints.join(', ')})` : ''}`,
    `identities:  ${s.identities}`,
    `policies:    ${s.policies} (engine revision ${s.policyRevision})`,
    `ipcache:     ${s.ipcacheEntries} entries`,
    `policy maps: ${s.policyMapPressure === undefined ? '-' : `fullest ${s.policyMapPressure.endpoint} ${s.policyMapPressure.entries}/${s.policyMapPressure.capacity}`}`,
    '',
  ].join('\n');
}

export const statusCommand: Command = {
  path: ['status'],
  summary: "the local agent's health: etcd, sync state, endpoints, identities",
  usage: `Usage: ward status [flags]

Exit status 1 when the agent is unreachable, not in sync, or degraded.

Flags:
  -v, --verbose          also every endpoint's policy map fill and the datapath counters
${API_SOCKET_HELP}
  -o, --output FORMAT    table (default) or json`,
  async run(ctx) {
    const { values, positionals } = parseArgs({ args: [...ctx.argv], options: { 'api-socket': { type: 'string' }, output: { type: 'string', short: 'o' }, verbose: { type: 'boolean', short: 'v' } }, allowPositionals: true, strict: true });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    let fmt;
    try {
      fmt = parseOutputFormat(values.output);
    } catch (err) {
      throw new UsageError(`--output: ${err instanceof Error ? err.message : String(err)}`);
    }
    const client = apiClientFrom(values['api-socket'], ctx.env);
    const s = await client.status();
    const more = values.verbose === true ? await verboseStatus(client) : undefined;
    ctx.stdout.write(fmt === 'json' ? `${JSON.stringify(more === undefined ? s : { ...s, verbose: more.json }, null, 2)}\n` : renderStatus(s) + (more?.text ?? ''));
    return s.inSync && !s.degraded ? 0 : 1;
  },
};

export const AGENT_COMMANDS: readonly Command[] = [agentCommand, statusCommand];
