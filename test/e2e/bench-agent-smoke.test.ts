import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = join(import.meta.dirname, '..', '..');

// The agent benchmark in a few seconds (3 events, 1 add, 1,000 remote endpoints): every phase
// runs against real agents, etcd and kernel maps, and the last line is the JSON the issue names.
describe('npm run bench:agent (short form)', () => {
  it('runs every phase and ends with the JSON line', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/bench/agent.bench.ts'], {
      cwd: REPO,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, WARD_BENCH_EVENTS: '3', WARD_BENCH_ADDS: '1', WARD_BENCH_REMOTE: '1000', WARD_BENCH_SETTLE_MS: '100' },
    });
    expect(r.status, r.stderr).toBe(0);
    const last = r.stdout.trim().split('\n').at(-1)!;
    const json = JSON.parse(last) as Record<string, unknown>;
    for (const k of ['ipcache_p50_ms', 'ipcache_p99_ms', 'policy_p50_ms', 'policy_p99_ms', 'floor_p50_ms', 'floor_p99_ms', 'add_to_packet_p99_ms', 'bytes_per_remote_endpoint']) {
      expect(typeof json[k], k).toBe('number');
    }
    expect(json['bench']).toBe('agent');
  }, 90_000);
});
