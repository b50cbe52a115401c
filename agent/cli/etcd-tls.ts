import { readEtcdTls, type KvClientOptions } from '../kvstore/index.js';
import { UsageError } from './command.js';

/**
 * etcd TLS for the CLI's direct etcd commands (policy, identity): the same variables as the
 * agent's settings, WARD_ETCD_CA_FILE [+ WARD_ETCD_CERT_FILE + WARD_ETCD_KEY_FILE for mutual TLS].
 */
export function etcdTlsFromEnv(env: NodeJS.ProcessEnv): { credentials?: NonNullable<KvClientOptions['credentials']> } {
  const caFile = env['WARD_ETCD_CA_FILE'];
  const certFile = env['WARD_ETCD_CERT_FILE'];
  const keyFile = env['WARD_ETCD_KEY_FILE'];
  if (caFile === undefined || caFile === '') {
    if (certFile !== undefined || keyFile !== undefined) throw new UsageError('WARD_ETCD_CERT_FILE/WARD_ETCD_KEY_FILE need WARD_ETCD_CA_FILE');
    return {};
  }
  try {
    return { credentials: readEtcdTls({ caFile, certFile, keyFile }, { caFile: 'WARD_ETCD_CA_FILE', certFile: 'WARD_ETCD_CERT_FILE', keyFile: 'WARD_ETCD_KEY_FILE' }) };
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}
