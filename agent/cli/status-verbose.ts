import type { ApiClient, BpfPolicyJson, CounterJson } from '../api/index.js';
import { countersTable } from './observe-commands.js';
import { renderTable } from './output.js';

export interface VerboseStatus {
  readonly json: { readonly endpoints: readonly Omit<BpfPolicyJson, 'entries'>[]; readonly entries: Readonly<Record<string, number>>; readonly counters: readonly CounterJson[] };
  readonly text: string;
}

/** `ward status --verbose`: every endpoint's policy map fill and the datapath counters. */
export async function verboseStatus(client: ApiClient): Promise<VerboseStatus> {
  const eps = await client.listEndpoints();
  const maps: BpfPolicyJson[] = [];
  for (const e of eps) {
    try {
      maps.push(await client.getJson<BpfPolicyJson>(`/v1/bpf/policy/${encodeURIComponent(e.name)}`));
    } catch {
      // not programmed yet: no map to show
    }
  }
  const counters = await client.getJson<CounterJson[]>('/v1/bpf/counters');
  const rows = maps.map((m) => [m.endpoint, String(m.id), `${m.entries.length}/${m.capacity}`, `${((100 * m.entries.length) / m.capacity).toFixed(1)}%`, m.lockedDown ? 'LOCKED DOWN' : 'ok']);
  const text = `\npolicy maps:\n${renderTable(['ENDPOINT', 'ID', 'ENTRIES', 'PRESSURE', 'STATE'], rows)}\ndatapath counters:\n${countersTable(counters)}`;
  const entries = Object.fromEntries(maps.map((m) => [m.endpoint, m.entries.length]));
  return { json: { endpoints: maps.map(({ entries: _e, ...rest }) => rest), entries, counters }, text };
}
