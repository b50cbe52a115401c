import { WardError } from '../../identity/index.js';

/** The agent could not start or stopped on an unrecoverable error. */
export class AgentError extends WardError {}

/** A policy document cannot be imported or read back from etcd. */
export class PolicyDocumentError extends WardError {}
