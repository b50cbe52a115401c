import { decodeValue, type EndpointValue, type KeySchema, type NodeValue } from '../../kvstore-schema/index.js';
import { WatchStore, type KvClient, type Logger } from '../kvstore/index.js';
import type { PolicyRule } from '../policy/index.js';
import { policyRulesFromValue } from './policy-values.js';

/**
 * A stored policy, decoded and validated. An invalid value is logged and counted by the
 * WatchStore, which keeps the policy's previous rules (denies included).
 */
export interface WatchedPolicy {
  readonly name: string;
  readonly rules: readonly PolicyRule[];
}

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
        const value = decodeValue('policy', kv.value);
        return { name, rules: policyRulesFromValue({ ...value, name }) };
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
