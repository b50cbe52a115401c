// Import direction of ward (see README "Architecture"). Checked by `npm run lint`.
const PURE = '^(identity|kvstore-schema|agent/calc|agent/policy|agent/config)/';
module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'schema-is-leaf',
      comment: 'kvstore-schema is the etcd wire contract: it imports no other ward folder.',
      severity: 'error',
      from: { path: '^kvstore-schema/' },
      to: { path: '^(identity|agent|bpf)/' },
    },
    {
      name: 'core-is-pure',
      comment: 'The incremental core does no I/O: no etcd, sockets, processes, file system or agent edges.',
      severity: 'error',
      from: { path: PURE, pathNot: '\\.test\\.ts$' },
      to: {
        path: [
          '^node_modules/etcd3/',
          '^(node:)?(net|child_process|fs|fs/promises|http|https|dgram|worker_threads)$',
          '^agent/(kvstore|dataplane|api|cli|dev)/',
        ],
      },
    },
    {
      name: 'domain-never-imports-agent',
      comment: 'identity and kvstore-schema are libraries for the agent, never the other way round.',
      severity: 'error',
      from: { path: '^(identity|kvstore-schema)/' },
      to: { path: '^agent/' },
    },
    {
      name: 'core-imports-only-bpf-types',
      severity: 'error',
      from: { path: PURE },
      to: { path: '^bpf/', pathNot: '/types\\.ts$' },
    },
    {
      name: 'only-kvstore-imports-etcd3',
      severity: 'error',
      from: { pathNot: '^(agent/kvstore|test)/' },
      to: { path: '^node_modules/etcd3/' },
    },
    {
      name: 'bpf-never-imports-agent',
      severity: 'error',
      from: { path: '^bpf/' },
      to: { path: '^agent/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
    exclude: { path: '^(dist|bpf/build|bpf/napi/build)/' },
  },
};
