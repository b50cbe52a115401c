export * from './types.js';
export * from './validate.js';
export * from './server.js';
export * from './client.js';
