export * from './errors.js';
export * from './labels.js';
export * from './keys.js';
export * from './values.js';
export * from './codec.js';
export * from './schema-marker.js';
