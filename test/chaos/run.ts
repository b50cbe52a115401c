// `npm run chaos -- [--seed N] [--duration S] [--hosts N] [--lease-ttl S]`
// (env: CHAOS_SEED, CHAOS_DURATION, CHAOS_HOSTS, CHAOS_LEASE_TTL).
// Prints the seed first, progress on stderr, a table, and as the last stdout line one JSON object.
import { parseArgs } from 'node:util';
import { CHAOS_LEASE_TTL_S, failures, renderResult, runChaos } from './chaos.js';

const { values } = parseArgs({ options: { seed: { type: 'string' }, duration: { type: 'string' }, hosts: { type: 'string' }, 'lease-ttl': { type: 'string' } } });
const num = (v: string | undefined, fallback: number, what: string): number => {
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`chaos: --${what} wants a non-negative integer, got ${JSON.stringify(v)}\n`);
    process.exit(2);
  }
  return n;
};
const seed = num(values.seed ?? process.env['CHAOS_SEED'], Math.floor(Math.random() * 2 ** 31), 'seed');
const durationS = num(values.duration ?? process.env['CHAOS_DURATION'], 120, 'duration');
const hosts = num(values.hosts ?? process.env['CHAOS_HOSTS'], 3, 'hosts');
const leaseTtlS = num(values['lease-ttl'] ?? process.env['CHAOS_LEASE_TTL'], CHAOS_LEASE_TTL_S, 'lease-ttl');
process.stdout.write(`chaos seed=${seed} (rerun: npm run chaos -- --seed ${seed} --duration ${durationS} --hosts ${hosts} --lease-ttl ${leaseTtlS})\n`);
const r = await runChaos({ seed, durationS, hosts, leaseTtlS });
const bad = failures(r);
process.stdout.write(`\n${renderResult(r)}\n`);
process.stdout.write(bad.length === 0 ? 'chaos: every hard invariant held\n' : `chaos: FAILED: ${bad.join('; ')}\n`);
process.stdout.write(`${JSON.stringify(r)}\n`);
process.exitCode = bad.length === 0 ? 0 : 1;
