import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const PLUGIN = join(import.meta.dirname, '..', '..', '..', 'bin', 'ward-cni.js');

/**
 * podman 4.3 with its CNI backend, configured only through files in a temp dir of its own
 * (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF: storage, run dirs, CNI config and plugin dirs),
 * with `ward-cni` as the plugin of one network. destroy() removes its containers and the dir.
 */
export class Podman {
  readonly dir: string;
  readonly image = 'localhost/ward-bb:1';
  /** Every container goes under this cgroup (podman's default parent would stay behind). */
  readonly cgroupParent: string;
  private readonly env: NodeJS.ProcessEnv;

  constructor(
    tag: string,
    readonly network: string,
  ) {
    // Short: conmon's attach socket path under the run root must stay under 108 bytes.
    this.dir = `/tmp/wpm-${tag}`;
    this.cgroupParent = `/wpm-${tag}`;
    this.env = { ...process.env, CONTAINERS_CONF: join(this.dir, 'containers.conf'), CONTAINERS_STORAGE_CONF: join(this.dir, 'storage.conf') };
  }

  /** Writes the configs, the ward network (apiSocket, labels) and the plugin, imports the image. */
  setup(apiSocket: string, labels: Record<string, string>): void {
    const d = this.dir;
    for (const sub of ['net', 'plugins', 'storage', 'run', 'tmp', 'rootfs/bin']) mkdirSync(join(d, sub), { recursive: true });
    writeFileSync(
      join(d, 'containers.conf'),
      [
        '[containers]',
        'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
        '[network]',
        'network_backend = "cni"',
        `cni_plugin_dirs = ["${d}/plugins", "/usr/lib/cni"]`,
        `network_config_dir = "${d}/net"`,
        '[engine]',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        'runtime = "runc"',
        `tmp_dir = "${d}/tmp"`,
        '',
      ].join('\n'),
    );
    writeFileSync(join(d, 'storage.conf'), ['[storage]', 'driver = "vfs"', `graphroot = "${d}/storage"`, `runroot = "${d}/run"`, ''].join('\n'));
    // The runtime finds plugins by type; this one runs the checkout's plugin with this node.
    writeFileSync(join(d, 'plugins', 'ward-cni'), `#!/bin/sh\nexec '${process.execPath}' '${PLUGIN}' "$@"\n`);
    chmodSync(join(d, 'plugins', 'ward-cni'), 0o755);
    writeFileSync(
      join(d, 'net', `${this.network}.conflist`),
      JSON.stringify({ cniVersion: '1.0.0', name: this.network, plugins: [{ type: 'ward-cni', apiSocket, labels }] }, null, 2),
    );
    copyFileSync('/bin/busybox', join(d, 'rootfs', 'bin', 'busybox'));
    for (const applet of ['sh', 'nc', 'echo', 'sleep', 'cat']) symlinkSync('busybox', join(d, 'rootfs', 'bin', applet));
    execFileSync('tar', ['-C', join(d, 'rootfs'), '-cf', join(d, 'rootfs.tar'), '.']);
    execFileSync('podman', ['import', '--change', 'CMD ["/bin/sh"]', join(d, 'rootfs.tar'), this.image], { env: this.env, stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
  }

  /** `podman run -d` of the image on the ward network; podman passes CNI_ARGS on to the plugin. */
  start(name: string, cniArgs: string, cmd: readonly string[]): void {
    this.runOk(['run', '-d', '--name', name, '--cgroup-parent', this.cgroupParent, '--network', this.network, this.image, ...cmd], { CNI_ARGS: cniArgs });
  }

  /** `podman ARGS` with extra environment. */
  run(args: readonly string[], extraEnv: Record<string, string> = {}): { code: number; out: string; err: string } {
    const r = spawnSync('podman', [...args], { env: { ...this.env, ...extraEnv }, encoding: 'utf8', timeout: 60_000 });
    return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
  }

  runOk(args: readonly string[], extraEnv: Record<string, string> = {}): string {
    const r = this.run(args, extraEnv);
    if (r.code !== 0) throw new Error(`podman ${args.join(' ')} -> ${r.code}: ${r.err}`);
    return r.out;
  }

  /** The container's address on the ward network (from podman's own view of the CNI result). */
  ip(container: string): string {
    const [info] = JSON.parse(this.runOk(['inspect', container])) as { NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }[];
    return info!.NetworkSettings.Networks[this.network]!.IPAddress;
  }

  /** Removes every container of this podman (DEL runs), unmounts leftovers, deletes the dir. */
  destroy(): void {
    if (!existsSync(this.dir)) return;
    this.run(['rm', '-f', '-a', '-t', '0']);
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m.startsWith(this.dir + '/'))
      .reverse();
    for (const m of mounts) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
    rmSync(this.dir, { recursive: true, force: true });
    // Empty cgroup dirs of our parent in every hierarchy, deepest first.
    const rmTree = (p: string): void => {
      if (!existsSync(p)) return;
      for (const e of readdirSync(p, { withFileTypes: true })) if (e.isDirectory()) rmTree(join(p, e.name));
      try {
        rmdirSync(p);
      } catch {
        // still in use or not empty: leave it
      }
    };
    for (const ctl of readdirSync('/sys/fs/cgroup')) rmTree(join('/sys/fs/cgroup', ctl, this.cgroupParent));
  }
}
