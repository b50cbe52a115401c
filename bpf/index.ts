export * from './policy-map/types.js';
