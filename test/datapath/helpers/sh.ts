import { execFileSync, spawnSync } from 'node:child_process';

/** Runs a command, throwing with its stderr on failure. */
export function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${err.stderr ?? err.message}`);
  }
}

/** Runs a command, ignoring failure (cleanup paths). */
export function shQuiet(cmd: string, args: string[]): void {
  spawnSync(cmd, args, { stdio: 'ignore' });
}

export function ensureBpffs(): void {
  if (spawnSync('mountpoint', ['-q', '/sys/fs/bpf']).status !== 0) sh('mount', ['-t', 'bpf', 'bpffs', '/sys/fs/bpf']);
}
