// Runs the ward CLI from the TypeScript sources (tests spawn agents with `node --import tsx`).
import { main } from '../../../agent/index.js';

await main();
