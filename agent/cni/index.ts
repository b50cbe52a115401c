export * from './config.js';
export * from './env.js';
export * from './errors.js';
export * from './result.js';
export { runCni, type CniDeps, type CniOutput } from './plugin.js';
