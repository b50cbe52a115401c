export * from './errors.js';
export * from './http-head.js';
export * from './body-framer.js';
export * from './decision.js';
export * from './connection.js';
export * from './marks.js';
export * from './port-allocator.js';
export * from './proxy.js';
