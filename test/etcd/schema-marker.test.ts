import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../agent/config/index.js';
import { Agent } from '../../agent/daemon/index.js';
import { ensureSchemaMarker, KvClient, SchemaVersionError, silentLogger } from '../../agent/kvstore/index.js';
import { FakeDatapath } from '../../bpf/index.js';
import { KeySchema, SCHEMA_VERSION } from '../../kvstore-schema/index.js';
import { uniqueRoot, useEtcdCluster } from '../helpers/etcd.js';
import { noopNetlink } from '../helpers/netlink.js';

const etcd = useEtcdCluster({ members: 1 });
const log = silentLogger();
const dir = mkdtempSync(join(tmpdir(), 'ward-schema-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const netlink = noopNetlink;

describe('kvstore schema marker on a real etcd', () => {
  it('is created once by concurrent agents, accepted at the same version, refused when newer or broken', async () => {
    const schema = new KeySchema(uniqueRoot('schema'));
    const kv = new KvClient({ endpoints: etcd.get().endpoints, logger: log });
    try {
      const results = await Promise.all([1, 2, 3].map(() => ensureSchemaMarker(kv, schema)));
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(results.every((r) => r.cluster === SCHEMA_VERSION)).toBe(true);
      expect((await kv.get(schema.schemaMarkerKey)).kv?.value.toString()).toBe(String(SCHEMA_VERSION));

      // A newer agent (knows version+1) still works on the older cluster and does not raise the marker.
      expect(await ensureSchemaMarker(kv, schema, SCHEMA_VERSION + 1)).toEqual({ cluster: SCHEMA_VERSION, created: false });
      expect((await kv.get(schema.schemaMarkerKey)).kv?.value.toString()).toBe(String(SCHEMA_VERSION));

      await kv.put(schema.schemaMarkerKey, Buffer.from(String(SCHEMA_VERSION + 1)));
      await expect(ensureSchemaMarker(kv, schema)).rejects.toThrow(SchemaVersionError);
      await kv.put(schema.schemaMarkerKey, Buffer.from('two'));
      await expect(ensureSchemaMarker(kv, schema)).rejects.toThrow(/state\/schema: cannot decode schema marker value/);
    } finally {
      kv.close();
    }
  });

  it('an agent refuses to start (and writes nothing) against a cluster on a newer schema', async () => {
    const root = uniqueRoot('schema-agent');
    const schema = new KeySchema(root);
    const kv = new KvClient({ endpoints: etcd.get().endpoints, logger: log });
    try {
      await kv.put(schema.schemaMarkerKey, Buffer.from(String(SCHEMA_VERSION + 1)));
      const config = loadAgentConfig({
        flags: {
          'node-name': 'old-agent',
          'node-ip': '10.98.7.1',
          'endpoint-cidr': '10.217.0.0/24',
          etcd: etcd.get().endpoints.join(','),
          'etcd-root': root,
          'bpf-root': '/unused',
          'api-socket': join(dir, 'agent.sock'),
          'state-dir': join(dir, 'agent-state'),
        },
      });
      await expect(Agent.start({ config, logger: log, datapath: new FakeDatapath(), netlink, leaseTtlSeconds: 5 })).rejects.toThrow(
        new RegExp(`says the cluster uses kvstore schema version ${SCHEMA_VERSION + 1}, this ward knows only up to ${SCHEMA_VERSION}: upgrade ward on this node; refusing to write`),
      );
      const keys = (await kv.listPrefix(root)).kvs.map((k) => k.key.toString());
      expect(keys).toEqual([schema.schemaMarkerKey]);
    } finally {
      kv.close();
    }
  });
});
