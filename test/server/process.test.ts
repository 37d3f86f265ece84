import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateSecretKey } from "@tandem/core";
import { type AppRouter, nodeFlags } from "@tandem/server";
import { createTRPCClient, httpLink } from "@trpc/client";
import { afterEach, describe, expect, it } from "vitest";
import { spawnTandem } from "../support/process.ts";

const dirs: Array<string> = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "tandem-proc-"));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("tandem serve as a process", () => {
  it("the start scripts run Node with Tandem's flags", () => {
    const scripts = ["../../package.json", "../../packages/server/package.json"].map(
      (path) =>
        (JSON.parse(readFileSync(new URL(path, import.meta.url), "utf8")) as { scripts: { start: string } }).scripts
          .start,
    );
    for (const script of scripts) for (const flag of nodeFlags) expect(script).toContain(` ${flag} `);
  });

  it.each([
    [
      "a malformed DATABASE_URL",
      { DATABASE_URL: "::not a url::", TANDEM_SECRET_KEY: generateSecretKey() },
      /^tandem: DATABASE_URL is not a valid URL$/,
    ],
    [
      "an unreachable database",
      { DATABASE_URL: "postgres://tandem:hunter2@127.0.0.1:1/tandem", TANDEM_SECRET_KEY: generateSecretKey() },
      /^tandem: cannot reach database at 127\.0\.0\.1:1\/tandem: .*ECONNREFUSED/,
    ],
    ["a bad TANDEM_SECRET_KEY", { TANDEM_SECRET_KEY: "too-short" }, /^tandem: TANDEM_SECRET_KEY must be 32 bytes/],
    [
      "Postgres without TANDEM_SECRET_KEY",
      { DATABASE_URL: "postgres://root@127.0.0.1:5432/test" },
      /^tandem: TANDEM_SECRET_KEY is required with DATABASE_URL/,
    ],
    ["a bad PORT", { PORT: "http" }, /^tandem: invalid configuration: PORT: /],
    [
      "a plugin that cannot load",
      { TANDEM_CONNECTORS: "./no/such/plugin.js" },
      /^tandem: connector plugin "\.\/no\/such\/plugin\.js" failed to load: cannot import/,
    ],
  ])("fails fast with one clear line on %s", async (_name, env, expected) => {
    const started = performance.now();
    const proc = spawnTandem({ TANDEM_DATA_DIR: tempDir(), ...env });
    const { code } = await proc.exited;
    expect(code).toBe(1);
    const lines = proc.output().trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(expected);
    expect(proc.output()).not.toContain("hunter2");
    expect(performance.now() - started).toBeLessThan(15_000);
  });

  it("starts on the embedded database, prints the admin key once, keeps secrets out of its logs, stops on SIGTERM", async () => {
    const dataDir = tempDir();
    const first = spawnTandem({ TANDEM_DATA_DIR: dataDir, LOG_LEVEL: "debug" });
    const url = await first.listening;
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);

    const adminKey = readFileSync(join(dataDir, "admin.key"), "utf8").trim();
    expect(first.output()).toContain(adminKey);
    expect(statSync(join(dataDir, "admin.key")).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, "secret.key")).mode & 0o777).toBe(0o600);

    const client = (key: string) =>
      createTRPCClient<AppRouter>({
        links: [httpLink({ url: `${url}/trpc`, headers: { authorization: `Bearer ${key}` } })],
      });
    const tenant = await client(adminKey).tenants.create.mutate({ name: "logs" });
    const { key } = await client(adminKey).apiKeys.create.mutate({ tenantId: tenant.id, name: "k" });
    const secret = "hs-SECRET-in-logs-check-42";
    await client(key).connections.create.mutate({ connector: "hubspot", name: "c", config: { accessToken: secret } });
    await client(key)
      .connections.create.mutate({ connector: "hubspot", name: "c", config: { accessToken: secret } })
      .catch(() => {});

    first.child.kill("SIGTERM");
    expect((await first.exited).code).toBe(0);
    const logs = first.output();
    expect(logs).toContain('"message":"http request"');
    expect(logs).not.toContain(secret);
    expect(logs).not.toContain(key);
    expect(logs).not.toContain(readFileSync(join(dataDir, "secret.key"), "utf8").trim());

    // A second start reuses the keys and prints no new admin key; the data survived.
    const second = spawnTandem({ TANDEM_DATA_DIR: dataDir });
    const url2 = await second.listening;
    expect(second.output()).not.toContain("Admin API key");
    const again = createTRPCClient<AppRouter>({
      links: [httpLink({ url: `${url2}/trpc`, headers: { authorization: `Bearer ${key}` } })],
    });
    expect((await again.connections.list.query()).map((c) => c.name)).toEqual(["c"]);
    second.child.kill("SIGTERM");
    expect((await second.exited).code).toBe(0);
    // Two cold starts of embedded PostgreSQL: generous under a loaded CI machine.
  }, 120_000);
});
