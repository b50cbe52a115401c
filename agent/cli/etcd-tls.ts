import { readFileSync } from 'node:fs';
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

/** A password file: its first line, which must not be empty; errors name the flag or variable. */
export function readSecretFile(path: string, source: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`${source} ${path}: cannot read: ${err instanceof Error ? err.message : String(err)}`);
  }
  const secret = text.split(/\r?\n/)[0] ?? '';
  if (secret === '') throw new UsageError(`${source} ${path}: the first line is empty`);
  return secret;
}

/** etcd password auth for CLI commands: WARD_ETCD_USER + WARD_ETCD_PASSWORD_FILE, both or neither. */
export function etcdAuthFromEnv(env: NodeJS.ProcessEnv): { auth?: NonNullable<KvClientOptions['auth']> } {
  const username = env['WARD_ETCD_USER'];
  const file = env['WARD_ETCD_PASSWORD_FILE'];
  if ((username === undefined || username === '') && (file === undefined || file === '')) return {};
  if (username === undefined || username === '' || file === undefined || file === '') throw new UsageError('WARD_ETCD_USER and WARD_ETCD_PASSWORD_FILE go together: set both or neither');
  return { auth: { username, password: readSecretFile(file, 'WARD_ETCD_PASSWORD_FILE') } };
}
