// Shared base below every layer: the error type, results and event sinks, and
// small helpers that any layer (including sandbox, which imports nothing else
// of ours) may use.
export * from './atomic-write.js';
export * from './errors.js';
export * from './events.js';
export * from './limit.js';
export * from './lru-map.js';
export * from './process-alive.js';
export * from './remove-file.js';
export * from './result.js';
export * from './slots.js';
export * from './version.js';
