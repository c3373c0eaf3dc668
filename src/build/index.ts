// Build layer: building one element in the sandbox, with its dependencies
// staged, its subactions recorded, and its artifact captured.
export * from './element-build.js';
export * from './events.js';
export * from './tools.js';
export * from './socket-dir.js';
