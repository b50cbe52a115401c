import { readFile } from 'node:fs/promises';
import { LabelSet } from '../../identity/index.js';
import { IdentityClient, silentLogger } from '../kvstore/index.js';
import { OfflineTrace, type TraceEndpointSpec } from '../calc/index.js';
import { parsePolicy } from '../policy/index.js';
import { renderTable } from '../cli/output.js';
import { EtcdCluster } from './etcd-cluster.js';

export interface DemoOptions {
  readonly endpointsFile: string;
  readonly policyFile: string;
  /** Ports probed for the connectivity matrix. */
  readonly ports: readonly number[];
  readonly out: NodeJS.WritableStream;
  /** Runs `ward identity list` against the demo etcd (injected to keep the CLI out of agent/dev). */
  readonly listIdentities: (etcdEndpoints: string) => Promise<number>;
  /** Keep etcd running until the signal aborts (`--hold`). */
  readonly hold?: AbortSignal;
}

interface DemoEndpoint extends TraceEndpointSpec {
  readonly node: string;
}

/**
 * ward's main job on an embedded default, for now: a local one-member etcd, two simulated nodes
 * allocating identities for the sample workloads (the same labels on both nodes get one
 * identity), the identity table as `ward identity list` shows it, and the sample policy's
 * connectivity matrix. Everything started here is stopped before returning.
 */
export async function runDemo(o: DemoOptions): Promise<number> {
  const say = (s: string): void => void o.out.write(`${s}\n`);
  const specs = JSON.parse(await readFile(o.endpointsFile, 'utf8')) as TraceEndpointSpec[];
  // Alternate workloads over two nodes, and run the first one on both to show identity reuse.
  const workloads: DemoEndpoint[] = specs.map((s, i) => ({ ...s, node: `node-${(i % 2) + 1}` }));
  if (specs[0] !== undefined) workloads.push({ ...specs[0], name: `${specs[0].name}-2`, node: 'node-2' });
  const policy = parsePolicy(await readFile(o.policyFile, 'utf8'), o.policyFile);

  say('== starting a local etcd (1 member, data on tmpfs)');
  const etcd = await EtcdCluster.start({ members: 1 });
  const clients: IdentityClient[] = [];
  try {
    const endpoints = etcd.endpoints.join(',');
    say(`   etcd at ${endpoints}`);
    const byNode = new Map<string, IdentityClient>();
    for (const node of ['node-1', 'node-2']) {
      const c = await IdentityClient.connect({ endpoints: etcd.endpoints, node, logger: silentLogger() });
      clients.push(c);
      byNode.set(node, c);
    }
    say('== allocating identities for the sample workloads');
    const rows: string[][] = [];
    for (const w of workloads) {
      const a = await byNode.get(w.node)!.allocate(LabelSet.parse(w.labels));
      rows.push([w.name, w.node, w.labels.join(','), String(a.id)]);
    }
    o.out.write(renderTable(['WORKLOAD', 'NODE', 'LABELS', 'IDENTITY'], rows));
    say('\n== ward identity list');
    const code = await o.listIdentities(endpoints);
    if (code !== 0) return code;

    say(`\n== connectivity under ${o.policyFile} (TCP; offline trace of every pair)`);
    const trace = new OfflineTrace(specs, [policy]);
    const header = ['FROM \\ TO', ...specs.flatMap((d) => o.ports.map((p) => `${d.name}:${p}`))];
    const matrix = specs.map((s) => [
      s.name,
      ...specs.flatMap((d) =>
        o.ports.map((p) => (s.name === d.name ? '-' : trace.trace({ from: s.name, to: d.name, dport: p, protocol: 'TCP' }).verdict === 'allowed' ? 'allow' : 'deny')),
      ),
    ]);
    o.out.write(renderTable(header, matrix));
    say('\nTry: npx ward policy trace --endpoints examples/endpoints.json --policy examples/policy.yaml --from web --to api --dport 8080 --http-path /v1/users');
    if (o.hold !== undefined && !o.hold.aborted) {
      say(`\netcd stays up at ${endpoints} (WARD_ETCD_ENDPOINTS=${endpoints} npx ward identity list); Ctrl-C stops it.`);
      await new Promise<void>((resolve) => o.hold!.addEventListener('abort', () => resolve(), { once: true }));
    }
    return 0;
  } finally {
    for (const c of clients) await c.close({ revoke: true });
    await etcd.close();
    say('== stopped etcd and removed its data');
  }
}
