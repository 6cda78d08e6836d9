import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // onnxruntime-web compiles its wasm once per worker; a few long integration tests
    // (CLI subprocesses, full-subset evaluation) need more than the default 5 s.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
