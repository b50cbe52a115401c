import { Packr } from 'msgpackr';
import { DecodeError, UnknownVersionError } from './errors.js';
import { VALUE_VERSION, type ValueKind, type ValueKinds } from './values.js';

/**
 * The one msgpackr instance for etcd values. Explicit options so the bytes never depend on
 * shared structure state (no records), and decoding gives plain objects.
 */
const packr = new Packr({
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  mapsAsObjects: true,
  copyBuffers: true,
  variableMapSize: true,
  int64AsType: 'number',
  useFloat32: 0,
});

type Obj = Record<string, unknown>;
type Check = (o: Obj, kind: string) => void;

function field(o: Obj, kind: string, name: string, type: 'string' | 'uint' | 'number'): void {
  const v = o[name];
  const ok =
    type === 'string' ? typeof v === 'string' : type === 'uint' ? Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffff_ffff : typeof v === 'number' && Number.isFinite(v);
  if (!ok) throw new DecodeError(kind, `field ${name} must be ${type === 'uint' ? 'a uint32' : `a ${type}`}, got ${JSON.stringify(v)}`);
}
function stringArray(o: Obj, kind: string, name: string): void {
  const v = o[name];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new DecodeError(kind, `field ${name} must be a string array`);
}
function labelArray(o: Obj, kind: string, name: string): void {
  const v = o[name];
  const ok = Array.isArray(v) && v.every((l) => isObj(l) && typeof l['source'] === 'string' && typeof l['key'] === 'string' && typeof l['value'] === 'string');
  if (!ok) throw new DecodeError(kind, `field ${name} must be a list of {source,key,value}`);
}
function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

const CHECKS: { [K in ValueKind]: Check } = {
  identity: (o, k) => {
    field(o, k, 'id', 'uint');
    labelArray(o, k, 'labels');
    field(o, k, 'node', 'string');
    field(o, k, 'token', 'string');
  },
  'identity-index': (o, k) => {
    field(o, k, 'id', 'uint');
    field(o, k, 'token', 'string');
  },
  'identity-ref': (o, k) => {
    field(o, k, 'id', 'uint');
    field(o, k, 'token', 'string');
  },
  node: (o, k) => {
    field(o, k, 'name', 'string');
    stringArray(o, k, 'addresses');
    stringArray(o, k, 'endpointCidrs');
    const labels = o['labels'];
    if (!isObj(labels) || !Object.values(labels).every((x) => typeof x === 'string')) throw new DecodeError(k, 'field labels must map strings to strings');
    field(o, k, 'startedAtMs', 'number');
  },
  endpoint: (o, k) => {
    field(o, k, 'ip', 'string');
    field(o, k, 'identity', 'uint');
    field(o, k, 'node', 'string');
    field(o, k, 'name', 'string');
  },
  policy: (o, k) => {
    field(o, k, 'name', 'string');
    if (!Array.isArray(o['rules'])) throw new DecodeError(k, 'field rules must be an array');
    field(o, k, 'description', 'string');
    field(o, k, 'updatedAtMs', 'number');
  },
  leader: (o, k) => {
    field(o, k, 'holder', 'string');
    field(o, k, 'token', 'string');
    field(o, k, 'sinceMs', 'number');
  },
};

/** Encodes a value of the given kind (checks its shape first, so bad values never reach etcd). */
export function encodeValue<K extends ValueKind>(kind: K, value: ValueKinds[K]): Buffer {
  const o = value as unknown as Obj;
  if (o['v'] !== VALUE_VERSION) throw new DecodeError(kind, `refusing to encode version ${JSON.stringify(o['v'])}`);
  CHECKS[kind](o, kind);
  return packr.pack(value);
}

/**
 * Decodes and shape-checks a value. Throws UnknownVersionError for another schema version
 * (callers skip with a warning) and DecodeError for anything malformed. Extra fields are kept
 * (a newer writer of the same version may add optional fields).
 */
export function decodeValue<K extends ValueKind>(kind: K, bytes: Uint8Array): ValueKinds[K] {
  let raw: unknown;
  try {
    raw = packr.unpack(bytes);
  } catch (cause) {
    throw new DecodeError(kind, 'not msgpack', { cause });
  }
  if (!isObj(raw)) throw new DecodeError(kind, 'not a map');
  const v = raw['v'];
  if (!Number.isInteger(v)) throw new DecodeError(kind, 'missing schema version field v');
  if (v !== VALUE_VERSION) throw new UnknownVersionError(kind, v);
  CHECKS[kind](raw, kind);
  return raw as unknown as ValueKinds[K];
}

export type DecodeResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: DecodeError };

/** decodeValue without throwing: for watch loops that log and skip bad values. */
export function tryDecodeValue<K extends ValueKind>(kind: K, bytes: Uint8Array): DecodeResult<ValueKinds[K]> {
  try {
    return { ok: true, value: decodeValue(kind, bytes) };
  } catch (err) {
    if (err instanceof DecodeError) return { ok: false, error: err };
    return { ok: false, error: new DecodeError(kind, String(err), { cause: err }) };
  }
}
