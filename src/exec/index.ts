// Execution layer: run REAPI Actions from the CAS in the sandbox.
export * from './executor.js';
export * from './input-limit.js';
export * from './work-dir.js';
export * from './platform.js';
