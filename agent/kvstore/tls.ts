import { readFileSync } from 'node:fs';
import { KvError } from './errors.js';
import type { KvClientOptions } from './client.js';

/** Paths of the etcd TLS files (PEM): the CA, and for mutual TLS the client certificate and key. */
export interface EtcdTlsFiles {
  readonly caFile: string;
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
}

/** A TLS file is missing, unreadable or not PEM. */
export class KvTlsError extends KvError {}

function readPem(path: string, field: string, marker: RegExp): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (err) {
    throw new KvTlsError(`${field} ${path}: cannot read: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (!marker.test(data.toString('latin1'))) throw new KvTlsError(`${field} ${path}: not a PEM file (no ${marker.source.replace(/\\/g, '')} block)`);
  return data;
}

/**
 * Reads the CA (and for mutual TLS the client certificate and key) into the etcd3 credentials.
 * Certificate and key come together or not at all. `fields` names the settings in errors.
 */
export function readEtcdTls(files: EtcdTlsFiles, fields = { caFile: 'etcd.ca-file', certFile: 'etcd.cert-file', keyFile: 'etcd.key-file' }): NonNullable<KvClientOptions['credentials']> {
  if ((files.certFile === undefined) !== (files.keyFile === undefined)) {
    throw new KvTlsError(`${fields.certFile} and ${fields.keyFile} go together: give both or neither`);
  }
  const rootCertificate = readPem(files.caFile, fields.caFile, /-----BEGIN CERTIFICATE-----/);
  if (files.certFile === undefined || files.keyFile === undefined) return { rootCertificate };
  return {
    rootCertificate,
    certChain: readPem(files.certFile, fields.certFile, /-----BEGIN CERTIFICATE-----/),
    privateKey: readPem(files.keyFile, fields.keyFile, /-----BEGIN [A-Z ]*PRIVATE KEY-----/),
  };
}
