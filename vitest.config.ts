import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: [
      "packages/*/test/**/*.test.ts",
      "test/**/*.test.ts",
      "examples/*/test/**/*.test.ts",
      "bench/test/**/*.test.ts",
    ],
    // Suites create their own databases, so files run in parallel safely; 2 workers fit 2 cores.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // Generous: a loaded 2-core machine (CPU steal) can run ten times slower than a quiet one.
    testTimeout: 90_000,
    hookTimeout: 180_000,
  },
});
