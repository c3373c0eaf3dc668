// Lint rules: typescript-eslint strict type-checked, plus the layer arrows of
// docs/architecture.md (a layer imports only lower layers, through their index).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Which layers each layer may import (architecture.md, "Layers"). */
const layers = {
  core: [],
  reapi: [],
  cas: ['reapi'],
  remote: ['reapi', 'cas'],
  sandbox: [],
  exec: ['reapi', 'cas', 'sandbox'],
  server: ['reapi', 'cas', 'remote', 'exec'],
  wrap: ['reapi', 'cas', 'remote'],
  project: ['reapi', 'cas'],
  build: ['project', 'exec', 'server', 'sandbox', 'cas', 'reapi'],
  speculative: ['reapi', 'cas', 'remote', 'project'],
  scheduler: ['project', 'build', 'speculative', 'reapi', 'cas'],
};
const all = [...Object.keys(layers), 'cli', 'core'];

const layerConfigs = Object.entries(layers).map(([layer, allowed]) => {
  const forbidden = all.filter((l) => l !== layer && l !== 'core' && !allowed.includes(l));
  return {
    files: [`src/${layer}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: `^(\\.\\./)+(${forbidden.join('|')})/`,
              message: `src/${layer} may import only ${allowed.join(', ') || 'no other layer'} (docs/architecture.md)`,
            },
            {
              regex: `^(\\.\\./)+(${all.filter((l) => l !== layer).join('|')})/(?!index\\.js$)`,
              message: 'import another layer only through its index.js',
            },
          ],
        },
      ],
    },
  };
});

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'src/reapi/gen/', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      'no-console': 'error',
      // gRPC status codes arrive as plain numbers in google.rpc.Status and as
      // grpc-js's Status enum elsewhere; both are the same code space.
      '@typescript-eslint/no-unsafe-enum-comparison': 'off',
      '@typescript-eslint/no-unsafe-enum-assignment': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    files: ['src/cli/render/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.js', 'test/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['scripts/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      parserOptions: { projectService: false, project: null },
      globals: { process: 'readonly', console: 'readonly' },
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // node:test's describe/it return promises that the runner awaits itself.
      '@typescript-eslint/no-floating-promises': 'off',
    },
  },
  ...layerConfigs,
);
