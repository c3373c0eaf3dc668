// Sandbox layer: run a command in Linux namespaces with an overlay root.
export * from './sandbox.js';
export { sandboxHelper } from './helper.js';
export * from './limits.js';
export {
  SandboxSpawner,
  SpawnerSlot,
  sharedSpawner,
  type SpawnHandlers,
  type SpawnedSandbox,
} from './spawner.js';
