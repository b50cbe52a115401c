export { runCli, main } from './cli/main.js';
