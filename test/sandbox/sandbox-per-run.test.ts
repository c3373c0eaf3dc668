// The sandbox contract with the helper spawned per sandbox: what runInSandbox
// does when the spawner cannot start (here: SPECBUILD_SANDBOX_SPAWNER=0).
import { sandboxContract } from './sandbox-contract.js';

process.env.SPECBUILD_SANDBOX_SPAWNER = '0';
sandboxContract('per-run');
