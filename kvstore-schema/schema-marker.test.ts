import { describe, expect, it } from 'vitest';
import { DecodeError } from './errors.js';
import { decodeSchemaMarker, encodeSchemaMarker, judgeSchemaMarker, SCHEMA_VERSION } from './schema-marker.js';

describe('schema marker', () => {
  it('round-trips decimal text and rejects anything else', () => {
    expect(encodeSchemaMarker(1).toString()).toBe('1');
    expect(decodeSchemaMarker(encodeSchemaMarker(42))).toBe(42);
    for (const bad of ['', '0', '01', '-1', '1.5', ' 1', 'v1', '1\n']) expect(() => decodeSchemaMarker(Buffer.from(bad))).toThrow(DecodeError);
    expect(() => encodeSchemaMarker(0)).toThrow(RangeError);
  });

  it('lets an agent write at or above the cluster version and refuses a newer or broken marker', () => {
    const key = 'ward/state/schema';
    expect(judgeSchemaMarker(key, undefined)).toEqual({ kind: 'write-marker' });
    expect(judgeSchemaMarker(key, Buffer.from(String(SCHEMA_VERSION)))).toEqual({ kind: 'ok', cluster: SCHEMA_VERSION });
    expect(judgeSchemaMarker(key, Buffer.from('1'), 2)).toEqual({ kind: 'ok', cluster: 1 }); // a newer agent still reads the previous version
    const newer = judgeSchemaMarker(key, Buffer.from('3'), 2);
    expect(newer.kind).toBe('refuse');
    expect(newer.kind === 'refuse' && newer.reason).toMatch(/^ward\/state\/schema says the cluster uses kvstore schema version 3, this ward knows only up to 2: upgrade/);
    const broken = judgeSchemaMarker(key, Buffer.from('garbage'));
    expect(broken.kind === 'refuse' && broken.reason).toMatch(/^ward\/state\/schema: cannot decode schema marker value/);
  });
});
