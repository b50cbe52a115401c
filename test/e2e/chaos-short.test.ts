import { describe, expect, it } from 'vitest';
import { failures, renderResult, runChaos } from '../chaos/chaos.js';

// The short form of `npm run chaos` (docs/RELIABILITY.md): a fixed seed, about 25 s of faults
// (etcd member kill incl. the leader, agent kill -9, compaction + defrag; quorum loss needs more
// than the 15 s lease TTL and stays in the full run) while endpoints churn. No grace window:
// any allowed probe that fails counts as a violation.
describe('chaos (short)', () => {
  it('keeps policy, identities and agents intact under etcd and agent faults', async () => {
    const r = await runChaos({ seed: 1, durationS: 25, hosts: 3, faults: ['etcd-kill', 'etcd-kill-leader', 'agent-kill', 'compact-defrag'], log: () => undefined });
    console.log(`${renderResult(r)}\n${JSON.stringify(r)}`);
    expect(failures(r)).toEqual([]);
    expect(r.violations).toBe(0);
    expect(r.duplicate_identities).toBe(0);
    expect(r.dangling_references).toBe(0);
    expect(r.agent_crashes).toBe(0);
    expect(r.faults).toBeGreaterThanOrEqual(4);
    expect(r.probes).toBeGreaterThan(0);
  }, 180_000);
});
