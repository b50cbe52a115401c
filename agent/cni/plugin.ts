import { ApiClient, ApiClientError } from '../api/client.js';
import type { EndpointJson } from '../api/types.js';
import { decodeStdin, mergeLabels, parseNetConf, SUPPORTED_VERSIONS, type NetConf } from './config.js';
import { parseCniEnv, type CniEnv } from './env.js';
import { CNI_CODES, CniError, errorJson } from './errors.js';
import { readContainerLink, type ContainerLink } from './netns-link.js';
import { buildResult, endpointName, gatewayOf } from './result.js';

/** What the process prints on stdout and its exit code. */
export interface CniOutput {
  readonly stdout: string;
  readonly code: number;
}

/** The plugin's I/O edges (tests may replace them). */
export interface CniDeps {
  readonly client: (socket: string) => ApiClient;
  readonly link: (netns: string, ifname: string) => Promise<ContainerLink | undefined>;
}

// Under the agent's own 30 s in-sync wait plus the identity wait, so a slow agent answers 503.
const API_TIMEOUT_MS = 45_000;
const DEFAULT_DEPS: CniDeps = { client: (s) => new ApiClient(s, API_TIMEOUT_MS), link: readContainerLink };

/** An API failure as the CNI error the runtime can act on (11 = retry later). */
function apiError(what: string, err: unknown): CniError {
  if (!(err instanceof ApiClientError)) return new CniError(CNI_CODES.agentError, `${what}: ${err instanceof Error ? err.message : String(err)}`, '', { cause: err });
  const code =
    err.status === 0 || err.status === 503 || err.status === 409 ? CNI_CODES.tryAgainLater : err.status === 400 ? CNI_CODES.invalidConfig : CNI_CODES.agentError;
  return new CniError(code, `${what}: ${err.message}`, err.status === 0 ? 'is the ward agent running? (apiSocket in the network config)' : `agent answered HTTP ${err.status}`, { cause: err });
}

async function getOrUndefined(client: ApiClient, name: string): Promise<EndpointJson | undefined> {
  try {
    return await client.getEndpoint(name);
  } catch (err) {
    if (err instanceof ApiClientError && err.status === 404) return undefined;
    throw apiError(`ward agent: get endpoint ${name}`, err);
  }
}

async function add(env: CniEnv, conf: NetConf, deps: CniDeps): Promise<string> {
  const netns = env.netns!;
  const labels = mergeLabels(conf, env.args);
  const name = endpointName(env.containerId, conf.name, env.ifname);
  const client = deps.client(conf.apiSocket);
  let gateway: string;
  try {
    gateway = gatewayOf((await client.status()).endpointCidr);
  } catch (err) {
    throw apiError('ward agent: status', err);
  }
  let ep = await getOrUndefined(client, name);
  if (ep !== undefined && ep.netns !== netns) {
    // Same attachment in a new netns: the old one is stale (its DEL never came).
    await del(client, name);
    ep = undefined;
  }
  if (ep === undefined) {
    try {
      ep = await client.addEndpoint({ name, labels, netns, ifname: env.ifname });
    } catch (err) {
      // A concurrent retry of this ADD created it first: answer with its result.
      ep = err instanceof ApiClientError && err.status === 409 ? await getOrUndefined(client, name) : undefined;
      if (ep === undefined || ep.netns !== netns) throw apiError(`ward agent: add endpoint ${name}`, err);
    }
  }
  const link = await deps.link(netns, env.ifname);
  const result = buildResult({ cniVersion: conf.cniVersion, ifname: env.ifname, netns, ip: ep.ip, gateway, ...(link !== undefined && link.mac !== '' ? { mac: link.mac } : {}), ...(conf.prevResult !== undefined ? { prevResult: conf.prevResult } : {}) });
  return JSON.stringify(result);
}

async function del(client: ApiClient, name: string): Promise<void> {
  try {
    await client.deleteEndpoint(name);
  } catch (err) {
    if (err instanceof ApiClientError && err.status === 404) return; // already gone: DEL is idempotent
    throw apiError(`ward agent: delete endpoint ${name}`, err);
  }
}

function prevIps(prev: Record<string, unknown> | undefined): string[] | undefined {
  const ips = prev?.['ips'];
  if (!Array.isArray(ips)) return undefined;
  return ips.map((x) => (typeof x === 'object' && x !== null ? String((x as Record<string, unknown>)['address']) : ''));
}

async function check(env: CniEnv, conf: NetConf, deps: CniDeps): Promise<void> {
  const netns = env.netns!;
  const name = endpointName(env.containerId, conf.name, env.ifname);
  const ep = await getOrUndefined(deps.client(conf.apiSocket), name);
  const fail = (msg: string): CniError => new CniError(CNI_CODES.checkFailed, `check ${name}: ${msg}`);
  if (ep === undefined) throw fail('the agent has no such endpoint');
  if (ep.netns !== netns) throw fail(`endpoint is in netns ${ep.netns}, not ${netns}`);
  if (!ep.programmed) throw fail('endpoint has no policy programs attached');
  const ips = prevIps(conf.prevResult);
  if (ips !== undefined && !ips.includes(`${ep.ip}/32`)) throw fail(`endpoint IP ${ep.ip} is not in prevResult (${ips.join(', ')})`);
  const link = await deps.link(netns, env.ifname);
  if (link === undefined) throw fail(`no interface ${env.ifname} in ${netns}`);
  if (!link.ipv4.includes(ep.ip)) throw fail(`interface ${env.ifname} does not hold ${ep.ip} (has ${link.ipv4.join(', ') || 'none'})`);
}

function version(stdinText: string): string {
  let requested = '1.0.0';
  try {
    const v = (JSON.parse(stdinText) as Record<string, unknown>)['cniVersion'];
    if (typeof v === 'string' && v !== '') requested = v;
  } catch {
    // VERSION may come with an empty stdin: answer for the newest version
  }
  return JSON.stringify({ cniVersion: requested, supportedVersions: SUPPORTED_VERSIONS });
}

/** The cniVersion to put in an error result: the config's if readable, else 1.0.0. */
function errorVersion(stdinText: string): string {
  try {
    const v = (JSON.parse(stdinText) as Record<string, unknown>)['cniVersion'];
    return typeof v === 'string' && v !== '' ? v : '1.0.0';
  } catch {
    return '1.0.0';
  }
}

/** One plugin invocation: CNI_* env and stdin in, result or error JSON and exit code out. */
export async function runCni(envVars: NodeJS.ProcessEnv, stdinText: string, deps: CniDeps = DEFAULT_DEPS): Promise<CniOutput> {
  try {
    const env = parseCniEnv(envVars);
    if (env.command === 'VERSION') return { stdout: version(stdinText), code: 0 };
    const conf = parseNetConf(decodeStdin(stdinText));
    switch (env.command) {
      case 'ADD':
        return { stdout: await add(env, conf, deps), code: 0 };
      case 'DEL':
        await del(deps.client(conf.apiSocket), endpointName(env.containerId, conf.name, env.ifname));
        return { stdout: '', code: 0 };
      case 'CHECK':
        await check(env, conf, deps);
        return { stdout: '', code: 0 };
    }
  } catch (err) {
    return { stdout: JSON.stringify(errorJson(errorVersion(stdinText), err)), code: 1 };
  }
}


