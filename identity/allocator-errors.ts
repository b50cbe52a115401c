import { WardError } from './errors.js';
import type { IdentityRange } from './numeric.js';

/** Every identity in the configured range is in use. */
export class IdentityRangeExhaustedError extends WardError {
  constructor(readonly range: IdentityRange) {
    super(`identity range ${range.min}-${range.max} is exhausted: no free identity (run GC, or widen the range)`);
  }
}

/** Allocation kept losing races (or etcd kept answering inconsistently) beyond the retry budget. */
export class AllocationConflictError extends WardError {}

/** A label set that cannot become a cluster identity (e.g. empty). */
export class InvalidLabelsError extends WardError {}
