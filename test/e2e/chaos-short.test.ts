import { describe, expect, it } from 'vitest';
import { CHAOS_LEASE_TTL_S, failures, renderResult, runChaos } from '../chaos/chaos.js';

// The short form of `npm run chaos` (docs/RELIABILITY.md): every fault kind once (etcd member
// kill incl. the leader, quorum loss for longer than twice the agents' 5 s lease TTL, agent
// kill -9, compaction + defrag) while endpoints churn: about 25 s of faults, short gaps between
// them. No grace window: any allowed probe that fails counts as a violation; after each fault
// every agent's kernel ipcache and policy maps must equal what etcd computes to. CHAOS_SEED
// picks another schedule (the faults' order changes, each kind still runs once).
const seed = Number(process.env['CHAOS_SEED'] ?? 1);

describe('chaos (short)', () => {
  it('keeps policy, identities, kernel maps and agents intact under etcd and agent faults', async () => {
    // Faults, convergence times and anything that went wrong; not the per-fault details.
    const lines: string[] = [];
    const r = await runChaos({ seed, durationS: 10, hosts: 3, gapMs: [200, 600], log: (l) => void (/^fault |converged in|VIOLATION|CONVERGE FAILURE|INVARIANT|CRASH|quorum back|logs kept/.test(l) && lines.push(l)) });
    console.log(`${lines.join('\n')}\n${renderResult(r)}\n${JSON.stringify(r)}`);
    expect(failures(r)).toEqual([]);
    expect(r.violations).toBe(0);
    expect(r.duplicate_identities).toBe(0);
    expect(r.dangling_references).toBe(0);
    expect(r.agent_crashes).toBe(0);
    expect(r.converge_failures).toBe(0);
    expect(Object.keys(r.faults_by_kind).sort()).toEqual(['agent-kill', 'compact-defrag', 'etcd-kill', 'etcd-kill-leader', 'quorum-loss']);
    expect(r.lease_ttl_s).toBe(CHAOS_LEASE_TTL_S);
    expect(r.quorum_loss_min_s).toBeGreaterThan(2 * CHAOS_LEASE_TTL_S);
    expect(r.agent_lease_restores).toBeGreaterThan(0); // the lease-loss path really ran
    expect(r.identity_samples).toBeGreaterThan(5);
    expect(r.policy_entries_checked).toBeGreaterThan(0);
    expect(r.probes).toBeGreaterThan(0);
  }, 180_000);
});
