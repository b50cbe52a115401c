import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { freeLoopbackPort } from '../../agent/dev/free-port.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_FIELDS, loadAgentConfig } from '../../agent/config/index.js';
import { notifyReady } from '../../agent/daemon/sd-notify.js';
import { eventually } from '../e2e/helpers/eventually.js';
import { runWard, type CliResult } from '../helpers/cli.js';

const REPO = join(import.meta.dirname, '..', '..');
const INSTALL = join(REPO, 'deploy', 'install.sh');

function run(cmd: string, args: readonly string[]): { code: number; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** Every file under `dir` (outside node_modules) with its mtime, to prove a rerun touches nothing. */
function snapshot(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const r = run('find', [dir, '-path', '*/node_modules', '-prune', '-o', '-type', 'f', '-print']);
  for (const f of r.out.split('\n').filter((x) => x !== '')) out.set(f, statSync(f).mtimeMs);
  return out;
}

describe('deploy/install.sh into a staging root', () => {
  let root: string;
  let first: ReturnType<typeof run>;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'ward-deploy-'));
    first = run(INSTALL, ['--root', root, '--etcd']);
  }, 120_000);
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('installs the tree, the wrapper, the config and the units', () => {
    expect(first.err).toBe('');
    expect(first.code).toBe(0);
    for (const f of [
      'opt/ward/package.json',
      'opt/ward/bin/ward.js',
      'opt/ward/dist/agent/cli/main.js',
      'opt/ward/bpf/build/ward_endpoint.o',
      'opt/ward/bpf/napi/build/Release/ebpf_napi.node',
      'opt/ward/node_modules/etcd3/package.json',
      'opt/ward/docs/AGENT.md',
      'usr/local/bin/ward',
      'opt/ward/bin/ward-cni.js',
      'usr/lib/cni/ward-cni',
      'etc/ward/agent.yaml',
      'etc/ward/etcd.env',
      'etc/systemd/system/ward-agent.service',
      'etc/systemd/system/ward-etcd.service',
    ]) {
      expect(existsSync(join(root, f)), f).toBe(true);
    }
    // Production dependencies only.
    expect(existsSync(join(root, 'opt/ward/node_modules/vitest'))).toBe(false);
    // The wrapper names the final prefix, not the staging root.
    const wrapper = readFileSync(join(root, 'usr/local/bin/ward'), 'utf8');
    expect(wrapper).toContain('/opt/ward/bin/ward.js "$@"');
    expect(wrapper).not.toContain(root);
    expect(statSync(join(root, 'usr/local/bin/ward')).mode & 0o111).not.toBe(0);
    expect(readFileSync(join(root, 'usr/lib/cni/ward-cni'), 'utf8')).toContain('/opt/ward/bin/ward-cni.js "$@"');
    expect(readFileSync(join(root, 'etc/ward/agent.yaml'), 'utf8')).toBe(readFileSync(join(REPO, 'deploy/agent.yaml.example'), 'utf8'));
  });

  it('the installed tree runs on its own node_modules', () => {
    const r = run(process.execPath, [join(root, 'opt/ward/bin/ward.js'), '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('Usage: ward <command>');
  });

  it('is idempotent: a second run changes no file and keeps an edited config', () => {
    const cfg = join(root, 'etc/ward/agent.yaml');
    writeFileSync(cfg, 'node-name: edited\n');
    const before = snapshot(root);
    const again = run(INSTALL, ['--root', root, '--etcd']);
    expect(again.code).toBe(0);
    expect(again.out).toContain('up to date');
    expect(snapshot(root)).toEqual(before);
    expect(readFileSync(cfg, 'utf8')).toBe('node-name: edited\n');
  });

  it('systemd-analyze verify accepts both units as installed', () => {
    // verify needs ExecStart to exist: point the agent unit at the staged wrapper.
    const unit = readFileSync(join(root, 'etc/systemd/system/ward-agent.service'), 'utf8');
    expect(unit).toContain('ExecStart=/usr/local/bin/ward agent --config /etc/ward/agent.yaml');
    const dir = mkdtempSync(join(tmpdir(), 'ward-units-'));
    try {
      writeFileSync(join(dir, 'ward-agent.service'), unit.replace('ExecStart=/usr/local/bin/ward ', `ExecStart=${root}/usr/local/bin/ward `));
      writeFileSync(join(dir, 'ward-etcd.service'), readFileSync(join(root, 'etc/systemd/system/ward-etcd.service')));
      for (const u of ['ward-agent.service', 'ward-etcd.service']) {
        const r = run('systemd-analyze', ['verify', '--man=no', join(dir, u)]);
        // Unknown keys are only warnings (exit 0): any output is a failure.
        expect({ unit: u, code: r.code, out: r.out + r.err }).toEqual({ unit: u, code: 0, out: '' });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects bad arguments with exit status 2', () => {
    expect(run(INSTALL, ['--bogus']).code).toBe(2);
    expect(run(INSTALL, ['--prefix', 'relative']).code).toBe(2);
    expect(run(INSTALL, ['--root']).code).toBe(2);
  });
});

describe('deploy/agent.yaml.example', () => {
  const text = readFileSync(join(REPO, 'deploy/agent.yaml.example'), 'utf8');

  it('is a valid agent config', () => {
    const c = loadAgentConfig({ file: { name: 'agent.yaml.example', text } });
    expect(c.nodeName).toBe('host-1');
    expect(c.etcd.endpoints).toHaveLength(3);
  });

  it('documents every setting with its environment variable and flag', () => {
    for (const f of Object.values(AGENT_FIELDS)) {
      const leaf = f.yaml[f.yaml.length - 1]!;
      expect(text, leaf).toMatch(new RegExp(`^\\s*#?\\s*${leaf}:`, 'm'));
      expect(text, f.env).toContain(f.env);
      expect(text, f.flag).toContain(`--${f.flag}`);
    }
  });
});

const ward = (argv: string[], env: NodeJS.ProcessEnv): Promise<CliResult> => runWard(argv, env);

describe('deploy/etcd/etcd.env.example with certificates from deploy/make-certs.sh', () => {
  it('runs a TLS etcd member that accepts the node certificate and refuses clients without one', async () => {
    const pki = mkdtempSync(join(tmpdir(), 'ward-pki-'));
    const data = mkdtempSync('/dev/shm/ward-deploy-etcd-'); // tmpfs: etcd 3.4 fsyncs
    let etcd: ChildProcess | undefined;
    try {
      const certs = join(REPO, 'deploy', 'make-certs.sh');
      for (const args of [['ca'], ['member', 'etcd-1', '127.0.0.1'], ['node', 'host-1'], ['node', 'host-1']]) {
        const r = run(certs, [pki, ...args]);
        expect(r.code, r.err).toBe(0);
      }
      expect(run(certs, [pki, 'node', 'Bad_Name']).code).toBe(2);
      expect(statSync(join(pki, 'host-1.key')).mode & 0o077).toBe(0);
      // The example, moved to loopback ports and reduced to one member; every variable kept.
      const [client, peer] = [await freeLoopbackPort(), await freeLoopbackPort()];
      const env: Record<string, string> = {};
      for (const line of readFileSync(join(REPO, 'deploy/etcd/etcd.env.example'), 'utf8').split('\n')) {
        const m = /^(ETCD_[A-Z_]+)=(.*)$/.exec(line);
        if (m === null) continue;
        env[m[1]!] = m[2]!
          .replaceAll('10.0.0.1:2379', `127.0.0.1:${client}`)
          .replaceAll('10.0.0.1:2380', `127.0.0.1:${peer}`)
          .replaceAll('/etc/ward/pki', pki)
          .replace('/var/lib/etcd/ward', join(data, 'member'));
      }
      env['ETCD_INITIAL_CLUSTER'] = `etcd-1=https://127.0.0.1:${peer}`;
      expect(Object.keys(env).length).toBeGreaterThan(15);
      const log = join(data, 'etcd.log');
      const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD')));
      etcd = spawn('sh', ['-c', `exec /usr/bin/etcd --log-level warn >${log} 2>&1`], { env: { ...clean, ...env }, stdio: 'ignore' });
      const ctl = (auth: boolean): ReturnType<typeof run> =>
        run('etcdctl', ['--endpoints', `https://127.0.0.1:${client}`, '--cacert', join(pki, 'ca.crt'), ...(auth ? ['--cert', join(pki, 'host-1.crt'), '--key', join(pki, 'host-1.key')] : []), '--command-timeout=2s', 'endpoint', 'health']);
      const healthy = await eventually(() => etcd!.exitCode === null && ctl(true).code === 0, 30_000, 200);
      expect(healthy, existsSync(log) ? readFileSync(log, 'utf8') : 'no etcd log').toBe(true);
      expect(ctl(false).code).not.toBe(0);
      // ward's own etcd client (grpc-js) takes the same files: a policy import over mutual TLS.
      const policy = join(pki, 'p.yaml');
      writeFileSync(policy, 'endpointSelector: { matchLabels: { app: db } }\ningress:\n  - fromEndpoints: [{ matchLabels: { app: web } }]\n');
      const tls = { WARD_ETCD_CA_FILE: join(pki, 'ca.crt'), WARD_ETCD_CERT_FILE: join(pki, 'host-1.crt'), WARD_ETCD_KEY_FILE: join(pki, 'host-1.key') };
      const imported = await ward(['policy', 'import', '--name', 'tls-check', '--etcd', `127.0.0.1:${client}`, policy], tls);
      expect(imported.err).toBe('');
      expect(imported.code).toBe(0);
      // etcd warns about ETCD_* variables it does not know: the example has none.
      expect(readFileSync(log, 'utf8')).not.toMatch(/unrecognized environment variable/);
    } finally {
      if (etcd?.pid !== undefined && etcd.exitCode === null) process.kill(etcd.pid, 'SIGKILL');
      rmSync(pki, { recursive: true, force: true });
      rmSync(data, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('systemd readiness (sd_notify through systemd-notify)', () => {
  it('sends READY=1 to NOTIFY_SOCKET, and nothing without it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ward-notify-'));
    const sock = join(dir, 'notify.sock');
    const recv = spawn('socat', ['-u', `UNIX-RECV:${sock}`, 'STDOUT'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let got = '';
    recv.stdout.on('data', (c: Buffer) => (got += c.toString()));
    const log = pino({ level: process.env['WARD_TEST_LOG'] ?? 'silent' });
    try {
      expect(await eventually(() => existsSync(sock), 5000, 20)).toBe(true);
      expect(await notifyReady({}, log)).toBe(false);
      expect(await notifyReady({ ...process.env, NOTIFY_SOCKET: sock }, log, 'in sync')).toBe(true);
      expect(await eventually(() => got.includes('READY=1'), 5000, 20)).toBe(true);
      expect(got).toContain('STATUS=in sync');
    } finally {
      if (recv.pid !== undefined && recv.exitCode === null) process.kill(recv.pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
