// "After each fault heals, every agent's kernel maps (ipcache and every policy map) converge to
// exactly the state computed from etcd": one check of that against one consistent etcd read.
import type { ApiClient } from '../../agent/api/client.js';
import type { BpfPolicyJson, IpcacheEntryJson } from '../../agent/api/observe-types.js';
import type { ClusterSnapshot } from './cluster-state.js';
import { desiredPolicyMaps, diffMaps, kernelPolicyMap } from './policy-maps.js';

export type ConvergeCheck = { readonly ok: true; readonly entries: number; readonly maps: number } | { readonly ok: false; readonly why: string };

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * Every agent in sync and not degraded, its kernel ipcache holds exactly the endpoint /32s etcd
 * lists (entries starting with `endpointNet`; node and CIDR entries are not endpoints), and each
 * endpoint etcd places on its node has a kernel policy map holding exactly what the engine
 * computes from the same read. The first difference found is the reason.
 */
export async function checkConverged(snap: ClusterSnapshot, hosts: readonly { readonly name: string }[], api: ReadonlyMap<string, ApiClient>, endpointNet: string): Promise<ConvergeCheck> {
  const want = new Map(snap.endpoints.map((v) => [`${v.ip}/32`, v.identity]));
  let entries = 0;
  let maps = 0;
  for (const h of hosts) {
    const client = api.get(h.name)!;
    const st = await client.status().catch(() => undefined);
    if (st === undefined || !st.inSync || st.degraded) return { ok: false, why: `${h.name}: ${st === undefined ? 'no status' : st.degraded ? 'degraded' : 'not in sync'}` };
    const mine = (await client.getJson<IpcacheEntryJson[]>('/v1/bpf/ipcache')).filter((e) => e.cidr.startsWith(endpointNet) && e.cidr.endsWith('/32'));
    const have = new Map(mine.map((e) => [e.cidr, e.identity]));
    const missing = snap.endpoints.filter((v) => have.get(`${v.ip}/32`) !== v.identity).map((v) => `missing ${v.ip}/32=${v.identity} (${v.node}/${v.name})`);
    const extra = mine.filter((e) => want.get(e.cidr) !== e.identity).map((e) => `extra ${e.cidr}=${e.identity}`);
    if (missing.length + extra.length > 0) return { ok: false, why: `${h.name}: kernel ipcache (etcd revision ${snap.revision}): ${[...missing.slice(0, 8), ...extra.slice(0, 8)].join(', ')}` };
    for (const [name, wantMap] of desiredPolicyMaps(snap, h.name)) {
      if (typeof wantMap === 'string') return { ok: false, why: `${h.name}: ${wantMap}` };
      let m: BpfPolicyJson;
      try {
        m = await client.getJson<BpfPolicyJson>(`/v1/bpf/policy/${encodeURIComponent(name)}`);
      } catch (err) {
        return { ok: false, why: `${h.name}/${name}: ${message(err)}` };
      }
      const diff = diffMaps(wantMap, kernelPolicyMap(m));
      if (m.lockedDown) diff.unshift('map locked down');
      if (diff.length > 0) return { ok: false, why: `${h.name}/${name} policy map (etcd revision ${snap.revision}):\n    ${diff.join('\n    ')}` };
      entries += wantMap.size;
      maps++;
    }
  }
  return { ok: true, entries, maps };
}
