import { defineConfig } from 'vitest/config';

// Two projects: fast pure unit tests (parallel), and integration suites that start real etcd
// clusters, load BPF programs and build network namespaces (limited parallelism on 2 cores).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{agent,identity,kvstore-schema,bpf}/**/*.test.ts', 'test/unit/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/{etcd,datapath,e2e,cli}/**/*.test.ts'],
          // At most two files at once: set by --maxWorkers=2 in scripts/test.sh (vitest 3 takes
          // worker limits only at the root, and unit tests want the default).
          pool: 'forks',
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
