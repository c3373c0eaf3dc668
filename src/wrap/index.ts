// Wrapper layer: specbuild-exec (and later specbuild-cc) turn commands into
// REAPI actions.
export * from './exec-wrapper.js';
export * from './outputs.js';
