import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { abortableSleep, Backoff } from './backoff.js';

describe('Backoff', () => {
  it('stays within [cap/2, cap], grows to max, resets', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 100, max: 10_000 }), fc.array(fc.double({ min: 0, max: 0.999, noNaN: true }), { minLength: 1, maxLength: 40 }), (min, max, rs) => {
        let i = 0;
        const b = new Backoff(min, max, () => rs[i++ % rs.length]!);
        let cap = min;
        for (let k = 0; k < rs.length; k++) {
          const d = b.next();
          expect(d).toBeGreaterThanOrEqual(Math.floor(Math.min(cap, max) / 2));
          expect(d).toBeLessThanOrEqual(Math.min(cap, max));
          cap *= 2;
        }
        b.reset();
        expect(b.next()).toBeLessThanOrEqual(min);
      }),
    );
  });
  it('abortableSleep returns at once when aborted', async () => {
    const ac = new AbortController();
    const t0 = Date.now();
    const p = abortableSleep(10_000, ac.signal);
    ac.abort();
    await p;
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
