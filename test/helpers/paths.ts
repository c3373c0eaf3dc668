// Paths shared by tests: the repository root and the shared test vectors.
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

/** The repository root (tests run from dist/test/...). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const sharedVectors = join(repoRoot, '..', 'shared', 'test-vectors');
export const cliMain = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
