import { DecodeError } from './errors.js';
import { VALUE_VERSION } from './values.js';

/**
 * The cluster-wide schema marker (`<root>state/schema`): the highest value schema version in
 * use, as plain decimal text so that every past and future agent can read it.
 */
export const SCHEMA_VERSION = VALUE_VERSION;

const VERSION_RE = /^[1-9]\d{0,8}$/;

export function encodeSchemaMarker(version: number): Buffer {
  if (!Number.isInteger(version) || version < 1) throw new RangeError(`schema version must be a positive integer, got ${version}`);
  return Buffer.from(String(version));
}

export function decodeSchemaMarker(value: Uint8Array): number {
  const text = Buffer.from(value).toString('utf8');
  if (!VERSION_RE.test(text)) throw new DecodeError('schema marker', `expected a positive decimal version, got ${JSON.stringify(text.slice(0, 40))}`);
  return Number(text);
}

/** What an agent that knows `known` may do against a cluster whose marker says `cluster`. */
export type SchemaVerdict =
  | { readonly kind: 'write-marker' }
  | { readonly kind: 'ok'; readonly cluster: number }
  | { readonly kind: 'refuse'; readonly reason: string };

export function judgeSchemaMarker(key: string, marker: Uint8Array | undefined, known: number = SCHEMA_VERSION): SchemaVerdict {
  if (marker === undefined) return { kind: 'write-marker' };
  let cluster: number;
  try {
    cluster = decodeSchemaMarker(marker);
  } catch (err) {
    return { kind: 'refuse', reason: `${key}: ${err instanceof Error ? err.message : String(err)}; refusing to write until it is fixed` };
  }
  if (cluster > known) {
    return { kind: 'refuse', reason: `${key} says the cluster uses kvstore schema version ${cluster}, this ward knows only up to ${known}: upgrade ward on this node; refusing to write` };
  }
  return { kind: 'ok', cluster };
}
