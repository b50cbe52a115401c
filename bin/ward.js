#!/usr/bin/env node
// Entry point of the `ward` CLI: runs the compiled TypeScript (npm run build).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = fileURLToPath(new URL('../dist/agent/cli/main.js', import.meta.url));
if (!existsSync(compiled)) {
  process.stderr.write('ward: not built yet; run `npm run build` (or scripts/setup.sh) first\n');
  process.exit(1);
}
const { main } = await import(compiled);
await main();
