export * from './errors.js';
export * from './types.js';
export * from './ipam.js';
export * from './netlink.js';
export * from './state-file.js';
