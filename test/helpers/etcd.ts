import { afterAll, beforeAll } from 'vitest';
import { Etcd3 } from 'etcd3';
import { EtcdCluster, type EtcdClusterOptions } from '../../agent/dev/etcd-cluster.js';

/**
 * One real etcd cluster per test file: started in beforeAll, always killed (by PID) and its
 * tmpfs dir removed in afterAll, even when tests fail. Use `get()` inside tests.
 */
export function useEtcdCluster(options: EtcdClusterOptions = {}): { get(): EtcdCluster } {
  let cluster: EtcdCluster | undefined;
  beforeAll(async () => {
    cluster = await EtcdCluster.start(options);
  });
  afterAll(async () => {
    await cluster?.close();
  });
  return {
    get(): EtcdCluster {
      if (cluster === undefined) throw new Error('etcd cluster not started (use inside a test)');
      return cluster;
    },
  };
}

/** A raw etcd3 client for test assertions (no wrapper), with a short per-call deadline. */
export function rawClient(endpoints: readonly string[], deadlineMs = 5000): Etcd3 {
  return new Etcd3({
    hosts: endpoints.map((e) => `http://${e}`),
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + deadlineMs }),
  });
}

/** A unique key root per test so tests sharing a cluster never see each other's keys. */
let rootSeq = 0;
export function uniqueRoot(tag: string): string {
  rootSeq += 1;
  return `t-${tag}-${process.pid}-${rootSeq}/`;
}
