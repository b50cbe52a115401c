/** Runs per property: ~1000 by default so the unit project stays fast; WARD_FUZZ_RUNS raises it. */
export function fuzzRuns(defaultRuns = 1000): number {
  const raw = process.env['WARD_FUZZ_RUNS'];
  const n = raw === undefined ? NaN : Number(raw);
  return Number.isInteger(n) && n > 0 ? n : defaultRuns;
}

/** Runs fn and returns what it threw (undefined when it returned); a non-Error throw is wrapped so it fails loudly. */
export function thrown(fn: () => unknown): Error | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof Error ? err : new Error(`non-Error thrown: ${String(err)}`);
  }
}

/** Test timeout that grows with the run count (the unit project default is 20 s). */
export function fuzzTimeout(runs: number): number {
  return Math.max(20_000, runs * 10);
}
