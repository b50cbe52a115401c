import { WardError } from '../../identity/index.js';

/** Base of endpoint errors; `status` is the HTTP status the local API answers with. */
export class EndpointError extends WardError {
  readonly status: number = 500;
}

/** The request is malformed or names something impossible (bad IP, netns missing...). */
export class EndpointInvalidError extends EndpointError {
  override readonly status: number = 400;
}

export class EndpointNotFoundError extends EndpointError {
  override readonly status: number = 404;
}

/** The name, IP or interface is taken. */
export class EndpointConflictError extends EndpointError {
  override readonly status: number = 409;
}

/** The agent cannot serve the request now (not in sync yet, closing). */
export class EndpointUnavailableError extends EndpointError {
  override readonly status: number = 503;
}

/** A netlink / `ip` command failed while wiring an endpoint. */
export class NetlinkError extends EndpointError {}

/** The local endpoint state file cannot be read or written. */
export class StateFileError extends EndpointError {}
