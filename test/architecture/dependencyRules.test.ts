/**
 * The dependency rules of .dependency-cruiser.cjs (run by `pnpm deps:check` in CI) catch what
 * they are meant to catch: each rule is shown a planted violation in a scratch tree laid out like
 * the workspace, and must name it; and the real workspace passes.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const workspace = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const config = join(workspace, ".dependency-cruiser.cjs");
const depcruise = join(workspace, "node_modules/dependency-cruiser/bin/dependency-cruiser.mjs");

interface Violation {
  readonly rule: { readonly name: string };
  readonly from: string;
  readonly to: string;
}

/** Runs the checker with one of its reporters; `err` is what CI uses, and exits non-zero on a violation. */
const depcruiseRun = (cwd: string, paths: ReadonlyArray<string>, outputType: "err" | "json") =>
  run(process.execPath, [depcruise, ...paths, "--config", config, "--output-type", outputType], {
    cwd,
    maxBuffer: 64 * 1024 * 1024,
  }).then(
    ({ stdout }) => ({ exitCode: 0, stdout }),
    (error: { code?: number; stdout?: string }) => ({ exitCode: error.code ?? -1, stdout: error.stdout ?? "" }),
  );

/** The violations found, from the JSON report, and the exit code of the run CI makes. */
const cruise = async (cwd: string, paths: ReadonlyArray<string>) => {
  const [json, err] = await Promise.all([depcruiseRun(cwd, paths, "json"), depcruiseRun(cwd, paths, "err")]);
  const report = JSON.parse(json.stdout) as { summary: { violations: ReadonlyArray<Violation> } };
  return { exitCode: err.exitCode, violations: report.summary.violations };
};

/** One planted violation per rule: the file that breaks it, what it imports, and the rule's name. */
const planted: ReadonlyArray<{ rule: string; file: string; source: string }> = [
  { rule: "core-imports-no-edge", file: "packages/core/src/leak.ts", source: `import "../../server/src/app.ts";` },
  {
    rule: "core-imports-no-edge",
    file: "packages/core/src/leak2.ts",
    source: `import "../../connector-hubspot/src/index.ts";`,
  },
  { rule: "core-imports-no-test-tooling", file: "packages/core/src/mocked.ts", source: `import "msw";` },
  {
    rule: "connectors-import-only-the-sdk",
    file: "packages/connector-acme/src/index.ts",
    source: `import "../../core/src/engine.ts";`,
  },
  { rule: "connectors-import-no-engine-libraries", file: "packages/connector-acme/src/db.ts", source: `import "pg";` },
  {
    rule: "template-imports-only-the-sdk",
    file: "examples/connector-template/src/index.ts",
    source: `import "../../../packages/core/src/engine.ts";`,
  },
  {
    rule: "sdk-stands-alone",
    file: "packages/connector-sdk/src/index.ts",
    source: `import "../../core/src/engine.ts";`,
  },
  {
    rule: "server-imports-no-test-code",
    file: "packages/server/src/demo.ts",
    source: `import "../../testkit/src/index.ts";`,
  },
  {
    rule: "no-foreign-internal",
    file: "packages/server/src/peek.ts",
    source: `import "../../core/src/internal/secret.ts";`,
  },
  { rule: "resolvable", file: "packages/server/src/typo.ts", source: `import "./does-not-exist.ts";` },
];

/** Files the planted imports point at, so that only the rule under test can fire. */
const targets = [
  "packages/server/src/app.ts",
  "packages/connector-hubspot/src/index.ts",
  "packages/core/src/engine.ts",
  "packages/core/src/internal/secret.ts",
  "packages/testkit/src/index.ts",
];

describe("dependency rules", () => {
  let scratch: string;

  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), "tandem-deprules-"));
    for (const path of [...targets, ...planted.map((p) => p.file)]) {
      mkdirSync(dirname(join(scratch, path)), { recursive: true });
    }
    for (const target of targets) writeFileSync(join(scratch, target), "export {};\n");
    for (const p of planted) writeFileSync(join(scratch, p.file), `${p.source}\nexport {};\n`);
    writeFileSync(
      join(scratch, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { allowImportingTsExtensions: true } }),
    );
    // The planted third-party imports (msw, pg) resolve through the testkit's node_modules, which holds both.
    symlinkSync(join(workspace, "packages/testkit/node_modules"), join(scratch, "node_modules"));
  });

  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it("names every planted violation, each under its rule, and fails the run", async () => {
    const { exitCode, violations } = await cruise(scratch, ["packages", "examples"]);
    const found = violations.map((v) => `${v.rule.name} ${v.from}`).sort();
    expect(found).toEqual(planted.map((p) => `${p.rule} ${p.file}`).sort());
    expect(exitCode).not.toBe(0);
  }, 120_000);

  it("passes on the workspace itself", async () => {
    const { exitCode, violations } = await cruise(workspace, ["packages", "examples", "bench", "test"]);
    expect(violations).toEqual([]);
    expect(exitCode).toBe(0);
  }, 120_000);
});
