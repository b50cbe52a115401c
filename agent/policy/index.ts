export * from './types.js';
export * from './errors.js';
export * from './parse.js';
export * from './http.js';
