export * from './errors.js';
export * from './decision.js';
export * from './connection-policy.js';
export * from './marks.js';
export * from './port-allocator.js';
export * from './types.js';
export * from './proxy.js';
