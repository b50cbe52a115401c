export * from './types.js';
export * from './validate.js';
export * from './server.js';
export * from './client.js';
export * from './observe-types.js';
export * from './observe-routes.js';
export * from './monitor-client.js';
