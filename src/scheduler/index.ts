// Scheduler layer: the pipeline over a resolved graph (keys, fetch, build,
// and the priming and generation hooks), its events.
export * from './scheduler.js';
export * from './events.js';
