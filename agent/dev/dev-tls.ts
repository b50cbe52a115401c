import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { dirname, join } from 'node:path';
import { WardError } from '../../identity/index.js';

/** The dev cluster's certificates could not be made. */
export class DevTlsError extends WardError {}

/** Name of the etcd members' shared server certificate in the pki dir. */
export const DEV_ETCD_CERT = 'etcd';
export const DEV_ADMIN_CERT = 'ward-admin';

export interface DevTlsFiles {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** CA + the certificate `name` (client CN = name, or the members' server certificate). */
export function devTlsFiles(pki: string, name: string): DevTlsFiles {
  return { caFile: join(pki, 'ca.crt'), certFile: join(pki, `${name}.crt`), keyFile: join(pki, `${name}.key`) };
}

/** deploy/make-certs.sh of this checkout (sources: agent/dev; compiled: dist/agent/dev). */
function makeCertsScript(): string {
  for (let d = import.meta.dirname, i = 0; i < 5; i++, d = dirname(d)) {
    const f = join(d, 'deploy', 'make-certs.sh');
    if (existsSync(f)) return f;
  }
  throw new DevTlsError('--tls: deploy/make-certs.sh not found next to this ward');
}

/** A CA, one server certificate for every loopback member, one client certificate per name. */
export function makeDevCerts(pki: string, clients: readonly string[]): void {
  const script = makeCertsScript();
  const run = (...args: string[]): void => {
    const r = spawnSync('bash', [script, pki, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new DevTlsError(`--tls: ${script} ${args.join(' ')} failed: ${r.error?.message ?? r.stderr.trim()}`);
  };
  run('ca');
  run('member', DEV_ETCD_CERT, '127.0.0.1');
  for (const c of clients) run('node', c);
}

/** /health of a mutual-TLS member (fetch cannot present a client certificate). */
export function healthyTls(port: number, timeoutMs: number, files: DevTlsFiles): Promise<boolean> {
  return new Promise((resolve) => {
    let ca: Buffer, cert: Buffer, key: Buffer;
    try {
      [ca, cert, key] = [readFileSync(files.caFile), readFileSync(files.certFile), readFileSync(files.keyFile)];
    } catch {
      resolve(false);
      return;
    }
    const req = request({ host: '127.0.0.1', port, path: '/health', ca, cert, key, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString()) as { health?: unknown };
          resolve(body.health === 'true' || body.health === true);
        } catch {
          resolve(false);
        }
      });
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}
