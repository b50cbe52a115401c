import { EtcdPermissionDeniedError, GRPCDeadlineExceededError, isRecoverableError } from 'etcd3';
import { WardError } from '../../identity/index.js';

/** Base of the etcd edge's errors. `ambiguous`: a write may or may not have been applied. */
export class KvError extends WardError {
  readonly ambiguous: boolean = false;
}

/** etcd could not be reached (or had no quorum) in time; retrying later may succeed. */
export class KvUnavailableError extends KvError {
  override readonly ambiguous: boolean;
  constructor(message: string, options: ErrorOptions & { ambiguous?: boolean } = {}) {
    super(message, options);
    this.ambiguous = options.ambiguous ?? true;
  }
}

/** A call exceeded its deadline. A write may still be applied later: read back. */
export class KvTimeoutError extends KvUnavailableError {}

/** etcd RBAC denied the operation. Not retried. */
export class KvPermissionError extends KvError {}

/** The client was closed. */
export class KvClosedError extends KvError {}

/** A value under a prefix we own could not be decoded. */
export class KvDataError extends KvError {}

/** Maps etcd3 errors to ours; `op` names the call for the message. */
export function toKvError(err: unknown, op: string): KvError {
  if (err instanceof KvError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (err instanceof EtcdPermissionDeniedError) return new KvPermissionError(`etcd ${op}: permission denied: ${msg}`, { cause: err });
  if (err instanceof GRPCDeadlineExceededError) return new KvTimeoutError(`etcd ${op}: deadline exceeded`, { cause: err });
  if (err instanceof Error && isRecoverableError(err)) return new KvUnavailableError(`etcd ${op}: ${msg}`, { cause: err });
  if (err instanceof Error && /circuit|breaker/i.test(msg)) return new KvUnavailableError(`etcd ${op}: all members failing (${msg})`, { cause: err, ambiguous: false });
  return new KvError(`etcd ${op}: ${msg}`, { cause: err });
}
