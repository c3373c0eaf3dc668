// Project layer: loading a project (project.conf, element files, variables,
// kinds, sources) in stages into a resolved dependency graph, and cache keys.
export * from './yaml.js';
export * from './names.js';
export * from './variables.js';
export * from './project.js';
export * from './element.js';
export * from './source-decl.js';
export * from './graph.js';
export * from './keys.js';
export * from './defaults.js';
export * from './sources/index.js';
export { asBool, asMap, asSeq, asString, checkKeys, didYouMean } from './schema.js';
