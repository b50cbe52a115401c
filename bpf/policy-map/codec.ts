import type { MapCodec } from '../sync/reconciler.js';
import { decodePolicyKey, decodePolicyValue, encodePolicyKey, encodePolicyValue, POLICY_KEY_SIZE, POLICY_VALUE_SIZE } from './layout.js';
import { policyKeyString } from './types.js';
import type { PolicyEntry, PolicyKey } from './types.js';

export const policyCodec: MapCodec<PolicyKey, PolicyEntry> = {
  keySize: POLICY_KEY_SIZE,
  valueSize: POLICY_VALUE_SIZE,
  keyString: policyKeyString,
  encodeKey: (k, buf, off) => void encodePolicyKey(k, buf, off),
  decodeKey: decodePolicyKey,
  encodeValue: (v, k, buf, off) => void encodePolicyValue(v, k, buf, off),
  decodeValue: decodePolicyValue,
  valueEquals: (a, b) => a.deny === b.deny && a.proxyPort === b.proxyPort,
};
