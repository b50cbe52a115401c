import { encodeSchemaMarker, judgeSchemaMarker, SCHEMA_VERSION, type KeySchema } from '../../kvstore-schema/index.js';
import { cmp, op, type KvClient } from './client.js';
import { KvError } from './errors.js';

/** The cluster's schema marker is newer than this agent (or unreadable): it must not write. */
export class SchemaVersionError extends KvError {}

/**
 * Checks `<root>state/schema` before the agent writes anything: creates it with `known` when
 * absent (one create-if-absent txn, so concurrent agents agree), returns the cluster version,
 * and throws SchemaVersionError when the marker is newer than `known` or malformed. The marker
 * is never raised here: that is an operator step once every agent knows the new version.
 */
export async function ensureSchemaMarker(client: KvClient, schema: KeySchema, known: number = SCHEMA_VERSION): Promise<{ cluster: number; created: boolean }> {
  const key = schema.schemaMarkerKey;
  const res = await client.txn({ compare: [cmp.absent(key)], success: [op.put(key, encodeSchemaMarker(known))], failure: [op.get(key)] }, 'schema-marker');
  if (res.succeeded) return { cluster: known, created: true };
  const kv = res.responses[0]?.response_range?.kvs[0];
  const verdict = judgeSchemaMarker(key, kv?.value, known);
  if (verdict.kind === 'refuse') throw new SchemaVersionError(verdict.reason);
  // Deleted between the compare and the read: not ours to recreate in a loop; the next start will.
  return { cluster: verdict.kind === 'ok' ? verdict.cluster : known, created: false };
}
