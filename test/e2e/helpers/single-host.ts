import { afterAll, beforeAll } from 'vitest';
import { EtcdCluster } from '../../../agent/dev/etcd-cluster.js';
import { KvClient, silentLogger } from '../../../agent/kvstore/index.js';
import { Probe } from '../../datapath/helpers/probe.js';
import { TestHost } from './host.js';

/** One real etcd member, one TestHost with its agent process, a raw etcd client, probes to stop. */
export interface SingleHost {
  readonly etcd: EtcdCluster;
  readonly host: TestHost;
  readonly kv: KvClient;
  /** Probes a test starts; stopped in afterAll. */
  readonly probes: Probe[];
}

/**
 * The fixture of the single-host e2e files: started in beforeAll, torn down in afterAll (probes,
 * agent, netns, client, etcd) even when a test fails. Fields throw before beforeAll has run.
 */
export function useSingleHost(opts: { readonly host?: ConstructorParameters<typeof TestHost>[1]; readonly kv?: { readonly attemptTimeoutMs: number; readonly callTimeoutMs: number } } = {}): SingleHost {
  let etcd: EtcdCluster | undefined;
  let host: TestHost | undefined;
  let kv: KvClient | undefined;
  const probes: Probe[] = [];

  beforeAll(async () => {
    etcd = await EtcdCluster.start({ members: 1 });
    kv = new KvClient({ endpoints: etcd.endpoints, logger: silentLogger(), ...opts.kv });
    host = new TestHost(etcd, opts.host);
    host.setup();
    await host.startAgent();
  });

  afterAll(async () => {
    for (const p of probes) p.stop();
    await host?.agent?.stop(5000);
    host?.destroy();
    kv?.close();
    await etcd?.close();
  });

  const started = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`${what} not started (use inside a test)`);
    return v;
  };
  return {
    get etcd() {
      return started(etcd, 'etcd');
    },
    get host() {
      return started(host, 'test host');
    },
    get kv() {
      return started(kv, 'etcd client');
    },
    probes,
  };
}
