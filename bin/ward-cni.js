#!/usr/bin/env node
// Entry point of the `ward-cni` CNI plugin: runs the compiled TypeScript (npm run build).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = fileURLToPath(new URL('../dist/agent/cni/main.js', import.meta.url));
if (!existsSync(compiled)) {
  // A CNI error result (code 5: I/O failure), so the runtime shows why.
  process.stdout.write(JSON.stringify({ cniVersion: '1.0.0', code: 5, msg: 'ward-cni: not built yet; run `npm run build` (or scripts/setup.sh) first' }) + '\n');
  process.exit(1);
}
const { main } = await import(compiled);
await main();
