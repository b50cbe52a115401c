import { WardError } from '../../identity/index.js';

/** The L7 proxy cannot open a listener or reach an upstream. */
export class ProxyError extends WardError {}
