// Execution layer: run REAPI Actions from the CAS in the sandbox.
export * from './executor.js';
