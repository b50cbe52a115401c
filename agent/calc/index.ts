export * from './filters.js';
export * from './map-state.js';
export * from './cidr-identities.js';
export * from './repository.js';
export * from './endpoint-policy.js';
export * from './engine.js';
export * from './full.js';
export * from './trace.js';
