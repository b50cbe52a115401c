import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { freeLoopbackPort } from '../../agent/dev/free-port.js';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { KvClient, readEtcdTls, silentLogger } from '../../agent/kvstore/index.js';

export interface TlsEtcd {
  readonly endpoint: string;
  readonly dir: string;
  /** CA + the client certificate whose CN is `name` (made by deploy/make-certs.sh). */
  files(name: string): { caFile: string; certFile: string; keyFile: string };
  /** WARD_ETCD_*_FILE variables for the CLI as `name`. */
  env(name: string): NodeJS.ProcessEnv;
}

function makeCerts(dir: string, clients: readonly string[]): void {
  const run = (...args: string[]): void => {
    const r = spawnSync('bash', ['deploy/make-certs.sh', dir, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`make-certs.sh ${args.join(' ')}: ${r.stderr}`);
  };
  run('ca');
  run('member', 'etcd-0', '127.0.0.1');
  for (const c of clients) run('node', c);
}

/**
 * One mutual-TLS-only etcd member per test file (certificates from deploy/make-certs.sh, one
 * client certificate per name in `clients`), on tmpfs; killed by PID and removed in afterAll.
 */
export function useTlsEtcd(clients: readonly string[]): { get(): TlsEtcd } {
  let dir = '';
  let proc: ChildProcess | undefined;
  let etcd: TlsEtcd | undefined;
  beforeAll(async () => {
    dir = mkdtempSync(join('/dev/shm', `ward-tlsetcd-${process.pid}-`));
    makeCerts(join(dir, 'pki'), clients);
    const pki = join(dir, 'pki');
    const [cport, pport] = [await freeLoopbackPort(), await freeLoopbackPort()];
    const endpoint = `127.0.0.1:${cport}`;
    const files = (name: string): { caFile: string; certFile: string; keyFile: string } => ({ caFile: join(pki, 'ca.crt'), certFile: join(pki, `${name}.crt`), keyFile: join(pki, `${name}.key`) });
    // prettier-ignore
    proc = spawn('etcd', [
      '--name', 'tls0', '--data-dir', join(dir, 'data'),
      '--listen-client-urls', `https://${endpoint}`, '--advertise-client-urls', `https://${endpoint}`,
      '--listen-peer-urls', `http://127.0.0.1:${pport}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${pport}`,
      '--initial-cluster', `tls0=http://127.0.0.1:${pport}`,
      '--cert-file', join(pki, 'etcd-0.crt'), '--key-file', join(pki, 'etcd-0.key'),
      '--client-cert-auth', '--trusted-ca-file', join(pki, 'ca.crt'),
      '--heartbeat-interval', '25', '--election-timeout', '250', '--quota-backend-bytes', String(64 * 1024 * 1024),
      '--log-level', 'warn', '--logger', 'zap', '--log-outputs', join(dir, 'etcd.log'),
    ], { stdio: 'ignore' });
    const probe = new KvClient({ endpoints: [endpoint], logger: silentLogger(), credentials: readEtcdTls(files(clients[0]!)), attemptTimeoutMs: 300, callTimeoutMs: 600 });
    const end = Date.now() + 15_000;
    try {
      for (;;) {
        if (proc.exitCode !== null) throw new Error(`etcd exited (${String(proc.exitCode)}); see ${dir}/etcd.log`);
        try {
          await probe.get('ready-probe');
          break;
        } catch (err) {
          if (Date.now() > end) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    } finally {
      probe.close();
    }
    etcd = {
      endpoint,
      dir,
      files,
      env: (name) => {
        const f = files(name);
        return { WARD_ETCD_CA_FILE: f.caFile, WARD_ETCD_CERT_FILE: f.certFile, WARD_ETCD_KEY_FILE: f.keyFile };
      },
    };
  }, 30_000);
  afterAll(() => {
    if (proc?.pid !== undefined && proc.exitCode === null) process.kill(proc.pid, 'SIGKILL');
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });
  return {
    get(): TlsEtcd {
      if (etcd === undefined) throw new Error('TLS etcd not started (use inside a test)');
      return etcd;
    },
  };
}
