import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cachedRoot: string | undefined;

/**
 * The repository root, found by walking up from this file to package.json. Works from the
 * sources (vitest, tsx: bpf/paths.ts) and from the compiled tree (dist/bpf/paths.js): build
 * artefacts always live under <root>/bpf/build and <root>/bpf/napi/build.
 */
export function repoRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bpf'))) return (cachedRoot = dir);
    const up = dirname(dir);
    if (up === dir) throw new Error(`ward: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** The compiled endpoint programs (clang output of bpf/progs/ward_endpoint.c). */
export function endpointObjectPath(): string {
  return join(repoRoot(), 'bpf', 'build', 'ward_endpoint.o');
}

export function addonPath(): string {
  return join(repoRoot(), 'bpf', 'napi', 'build', 'Release', 'ebpf_napi.node');
}

export function benchFloorPath(): string {
  return join(repoRoot(), 'bpf', 'build', 'bench-floor');
}

/** Default pin root of the agent's maps; tests use their own. */
export const DEFAULT_PIN_ROOT = '/sys/fs/bpf/ward';
