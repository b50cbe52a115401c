import { WardError } from '../identity/errors.js';

/** A failed bpf()/libbpf/netlink call made through ebpf-napi: carries errno and its name. */
export class BpfError extends WardError {
  constructor(
    message: string,
    readonly errno: number,
    readonly code: string,
    readonly syscall: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A map refused an insert because it is full (E2BIG for hashes, ENOSPC for LPM tries). */
export class MapFullError extends BpfError {}

/** The ebpf-napi addon is not built or cannot be loaded (run `npm run build:bpf`). */
export class AddonLoadError extends WardError {}

/** An endpoint's desired policy does not fit its policy map: the endpoint is failed closed. */
export class PolicyMapFullError extends WardError {
  constructor(
    readonly endpointId: number,
    readonly desiredEntries: number,
    readonly capacity: number,
    options?: ErrorOptions,
  ) {
    super(
      `policy map of endpoint ${endpointId} is full (${desiredEntries} desired entries, capacity ${capacity}): endpoint fails closed`,
      options,
    );
  }
}

/** The ipcache map is full: some prefixes are not mapped (their traffic is seen as world). */
export class IpcacheFullError extends WardError {
  constructor(
    readonly desiredEntries: number,
    options?: ErrorOptions,
  ) {
    super(`ipcache map is full (${desiredEntries} desired entries)`, options);
  }
}

/** The pin root is not on a mounted bpffs. */
export class BpffsError extends WardError {}

/** An object of this datapath was used after close(). */
export class ClosedError extends WardError {}

interface NativeErrorShape {
  message: string;
  errno?: unknown;
  code?: unknown;
  syscall?: unknown;
}

const FULL_CODES = new Set(['E2BIG', 'ENOSPC']);

/** Turns an error thrown by the addon into a typed BpfError (MapFullError when the map is full). */
export function toBpfError(e: unknown): Error {
  if (e instanceof BpfError) return e;
  if (!(e instanceof Error)) return new WardError(String(e));
  const n = e as NativeErrorShape;
  if (typeof n.errno !== 'number' || typeof n.code !== 'string') return e;
  const syscall = typeof n.syscall === 'string' ? n.syscall : '';
  const Cls = FULL_CODES.has(n.code) && syscall.includes('update') ? MapFullError : BpfError;
  return new Cls(n.message, n.errno, n.code, syscall, { cause: e });
}

/** Runs f, converting addon errors to typed ones. */
export function native<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw toBpfError(e);
  }
}
