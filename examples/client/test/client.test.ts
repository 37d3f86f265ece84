import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { hubSpotFakeToken, type ServedHubSpotFake, serveHubSpotFake } from "@tandem/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../../test/support/server.ts";

const run = promisify(execFile);
const main = fileURLToPath(new URL("../src/main.ts", import.meta.url));

describe("examples/client against a real server", () => {
  let t: TestServer;
  let fake: ServedHubSpotFake;
  let key: string;

  beforeAll(async () => {
    fake = await serveHubSpotFake({ port: 0 });
    fake.fake.seedContacts(320);
    t = await startTestServer("pglite");
    const admin = t.client(t.adminKey);
    const tenant = await admin.tenants.create.mutate({ name: "example" });
    key = (await admin.apiKeys.create.mutate({ tenantId: tenant.id, name: "example" })).key;
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    await fake?.close();
  });

  it("creates a connection, watches its sync to the end and reads the change feed", async () => {
    const { stdout } = await run(process.execPath, [main], {
      env: {
        PATH: process.env.PATH ?? "",
        TANDEM_URL: t.server.url,
        TANDEM_API_KEY: key,
        HUBSPOT_BASE_URL: fake.url,
        HUBSPOT_TOKEN: hubSpotFakeToken,
      },
      timeout: 60_000,
    });
    expect(stdout).toMatch(/connection [0-9a-f-]{36} created/);
    expect(stdout).toMatch(/completed: 320 records/);
    expect(stdout).toContain("read 320 contacts from the change feed");
  }, 90_000);
});
