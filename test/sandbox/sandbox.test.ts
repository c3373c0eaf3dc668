// The sandbox contract with the helper started through the process's spawner
// (the usual way).
import { sandboxContract } from './sandbox-contract.js';

sandboxContract('spawner');
