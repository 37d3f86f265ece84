import { defineConfig } from "vitest/config";

// Used when the package's own `pnpm test` runs (and after you copy it out of the Tandem repository).
export default defineConfig({ test: { include: ["test/**/*.test.ts"] } });
