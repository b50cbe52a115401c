import { WardError } from '../../identity/index.js';

/** Error codes of the CNI spec 1.0.0 ("Error" section); 100+ are ward's own. */
export const CNI_CODES = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  containerUnknown: 3,
  invalidEnv: 4,
  ioFailure: 5,
  decodeFailure: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  /** The agent refused or failed the request (its message is in `msg`). */
  agentError: 100,
  /** CHECK found the endpoint or the container's interface not as ADD left it. */
  checkFailed: 101,
} as const;

/** A failure the plugin reports as a CNI error result (stdout JSON, exit 1). */
export class CniError extends WardError {
  constructor(
    readonly code: number,
    message: string,
    readonly details = '',
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The spec's error result shape. */
export interface CniErrorJson {
  readonly cniVersion: string;
  readonly code: number;
  readonly msg: string;
  readonly details?: string;
}

export function errorJson(cniVersion: string, err: unknown): CniErrorJson {
  if (err instanceof CniError) return { cniVersion, code: err.code, msg: err.message, ...(err.details !== '' ? { details: err.details } : {}) };
  const msg = err instanceof Error ? err.message : String(err);
  return { cniVersion, code: CNI_CODES.agentError, msg };
}
