export * from './errors.js';
export * from './labels.js';
export * from './numeric.js';
