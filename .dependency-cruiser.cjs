/**
 * Tandem's dependency rules, checked by `pnpm deps:check` in CI (.ci/run).
 *
 * Paths are the files' real paths in the workspace: a `@tandem/*` import resolves
 * through pnpm's symlink to `packages/<name>/...`, so a rule on `^packages/server/`
 * catches both `@tandem/server` and a relative `../../server/src/x.ts`.
 * test/architecture/dependencyRules.test.ts plants a violation of every rule.
 */
/** Vendor connectors: every `packages/connector-*` but the SDK itself. */
const connectorSources = "^packages/(connector-(?!sdk/)[^/]+)/src/";

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "core-imports-no-edge",
      comment:
        "The engine knows connectors only through the SDK contract and the registry, and knows nothing of the server, the demo or test code.",
      severity: "error",
      from: { path: "^packages/core/src/" },
      to: { path: "^packages/(connector-(?!sdk/)[^/]+|server|testkit|sandbox|demo)/" },
    },
    {
      name: "core-imports-no-test-tooling",
      comment: "Production engine code never loads MSW or vitest.",
      severity: "error",
      from: { path: "^packages/(core|server|connector-sdk)/src/" },
      to: { path: "node_modules/(msw|vitest|@effect/vitest)/" },
    },
    {
      name: "connectors-import-only-the-sdk",
      comment:
        "A connector depends on @tandem/connector-sdk and its own vendor libraries, so a plugin author never pulls in the engine (pg, PGlite, Kysely, node-cron).",
      severity: "error",
      from: { path: connectorSources },
      to: { path: "^packages/", pathNot: "^packages/(connector-sdk|$1)/" },
    },
    {
      name: "connectors-import-no-engine-libraries",
      comment: "The engine's database and scheduling libraries are not a connector's business.",
      severity: "error",
      from: { path: [connectorSources, "^examples/connector-template/src/"] },
      to: { path: "node_modules/(pg|@electric-sql/pglite|kysely|node-cron)/" },
    },
    {
      name: "template-imports-only-the-sdk",
      comment: "The connector template is what plugin authors copy: it shows the SDK as the only Tandem dependency.",
      severity: "error",
      from: { path: "^examples/connector-template/src/" },
      to: { path: "^packages/", pathNot: "^packages/connector-sdk/" },
    },
    {
      name: "sdk-stands-alone",
      comment: "The connector SDK is published on its own: it imports no other Tandem package.",
      severity: "error",
      from: { path: "^packages/connector-sdk/src/" },
      to: { path: "^packages/", pathNot: "^packages/connector-sdk/" },
    },
    {
      name: "server-imports-no-test-code",
      comment:
        "The production server depends on no test code: not the testkit, not the vendor sandbox (the demo package wires those).",
      severity: "error",
      from: { path: "^packages/server/src/" },
      to: { path: "^packages/(testkit|sandbox|demo)/" },
    },
    {
      name: "no-foreign-internal",
      comment: "A package's internal/ folder is its own: others go through its exports.",
      severity: "error",
      from: { path: "^(packages|examples)/([^/]+)/" },
      to: { path: "^(packages|examples)/([^/]+)/(src/)?internal/", pathNot: "^$1/$2/" },
    },
    {
      name: "resolvable",
      comment: "Every import resolves; an unresolved one would slip past the rules above unseen.",
      severity: "error",
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "(^|/)dist/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "types", "default", "node"],
      extensions: [".ts", ".js", ".mjs", ".cjs", ".d.ts"],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
