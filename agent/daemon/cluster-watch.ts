import { decodeValue, type EndpointValue, type KeySchema, type NodeValue } from '../../kvstore-schema/index.js';
import { WatchStore, type KvClient, type Logger } from '../kvstore/index.js';
import type { PolicyRule } from '../policy/index.js';
import { policyRulesFromValue } from './policy-values.js';

/**
 * A stored policy, decoded and validated; or the reason it is not usable. Bad values are
 * delivered (not thrown) so that the agent keeps the policy's previous rules: a WatchStore
 * turns a decode failure of an existing key into a delete, which for a policy would drop its
 * rules (denies included) everywhere.
 */
export type WatchedPolicy = { readonly name: string; readonly rules: readonly PolicyRule[] } | { readonly name: string; readonly error: string };

/** The three cluster-wide prefixes the agent mirrors besides identities. */
export interface ClusterWatch {
  readonly policies: WatchStore<WatchedPolicy>;
  readonly endpoints: WatchStore<EndpointValue>;
  readonly nodes: WatchStore<NodeValue>;
}

/** Builds (does not start) the watch stores; bad values are logged and skipped by the store. */
export function createClusterWatch(client: KvClient, schema: KeySchema, logger: Logger): ClusterWatch {
  return {
    policies: new WatchStore<WatchedPolicy>(client, {
      prefix: schema.policies,
      logger,
      decode: (key, kv) => {
        const name = schema.parsePolicyKey(key);
        try {
          const value = decodeValue('policy', kv.value);
          return { name, rules: policyRulesFromValue({ ...value, name }) };
        } catch (err) {
          return { name, error: err instanceof Error ? err.message : String(err) };
        }
      },
    }),
    endpoints: new WatchStore<EndpointValue>(client, {
      prefix: schema.endpoints,
      logger,
      decode: (key, kv) => {
        const { ip } = schema.parseEndpointKey(key);
        const v = decodeValue('endpoint', kv.value);
        return v.ip === ip ? v : { ...v, ip };
      },
    }),
    nodes: new WatchStore<NodeValue>(client, {
      prefix: schema.nodes,
      logger,
      decode: (key, kv) => {
        schema.parseNodeKey(key);
        return decodeValue('node', kv.value);
      },
    }),
  };
}
