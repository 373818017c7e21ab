export * from './messages.js';
export * from './parse.js';
export * from './serialize.js';
export * from './clock.js';
export * from './layout.js';
