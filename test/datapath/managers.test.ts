import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { BpfMap, Datapath, encodePolicyKey, ipcacheKeyFromCidr, encodeIpcacheKeyRaw } from '../../bpf/index.js';
import { ipcacheContract, policyMapContract } from './helpers/contract.js';
import { ensureBpffs } from './helpers/sh.js';
import { uniqueName } from './helpers/topology.js';

// The kernel-backed managers pass the same contract as the in-memory fakes.
let pinRoot: string;
const datapaths = new Map<number, Datapath>();
let nextEndpoint = 500;

beforeAll(() => {
  ensureBpffs();
  pinRoot = `/sys/fs/bpf/${uniqueName('wdm')}`;
});

afterAll(() => {
  try {
    for (const d of datapaths.values()) d.close();
  } finally {
    if (pinRoot) Datapath.removePins(pinRoot);
  }
});

function datapath(capacity: number): Datapath {
  let d = datapaths.get(capacity);
  if (!d) {
    d = Datapath.open({ pinRoot, policyMapMaxEntries: capacity });
    datapaths.set(capacity, d);
  }
  return d;
}

function withPinned(path: string, f: (m: BpfMap) => void): void {
  const m = BpfMap.openPinned(path);
  try {
    f(m);
  } finally {
    m.close();
  }
}

policyMapContract('kernel', (capacity) => {
  const id = nextEndpoint++;
  const map = datapath(capacity).policy.open(id);
  return {
    map,
    injectDrift: () =>
      withPinned(`${pinRoot}/policy/ep_${id}`, (m) => {
        const [first] = [...m.keys()];
        m.delete(first!);
        m.update(encodePolicyKey({ identity: 7, direction: 0, protocol: 6, port: 1, portPrefixLen: 16 }), Buffer.alloc(8));
      }),
  };
});

ipcacheContract('kernel', () => {
  const ipcache = datapath(16).ipcache;
  return {
    ipcache,
    injectDrift: () =>
      withPinned(`${pinRoot}/ward_ipcache`, (m) => {
        const key = (cidr: string): Buffer => {
          const b = Buffer.alloc(8);
          encodeIpcacheKeyRaw(ipcacheKeyFromCidr(cidr)!, b);
          return b;
        };
        m.delete(key('10.0.0.1/32'));
        m.update(key('10.0.0.9/32'), Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]));
      }),
  };
});

it('the periodic repair loop restores a deleted entry and logs the drift', async () => {
  const warnings: object[] = [];
  const log = { debug: () => undefined, info: () => undefined, error: () => undefined, warn: (o: object) => void warnings.push(o) };
  const d = Datapath.open({ pinRoot, log });
  try {
    const id = nextEndpoint++;
    const m = d.policy.open(id);
    m.setDesired([[{ identity: 9, direction: 1, protocol: 17, port: 53, portPrefixLen: 16 }, { deny: false, proxyPort: 0 }]]);
    expect(d.policy.list()).toContain(id);
    withPinned(`${pinRoot}/policy/ep_${id}`, (raw) => raw.delete(encodePolicyKey({ identity: 9, direction: 1, protocol: 17, port: 53, portPrefixLen: 16 })));
    expect(m.dump().size).toBe(0);
    d.startRepairLoop(20);
    await vi.waitFor(() => expect(m.dump().size).toBe(1), { timeout: 10_000, interval: 20 });
    expect(warnings.some((w) => (w as { missing?: number }).missing === 1)).toBe(true);
  } finally {
    d.close();
  }
});
