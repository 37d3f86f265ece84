import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

describe("logs at debug level", () => {
  let t: TestServer;
  const lines: Array<string> = [];

  beforeAll(async () => {
    vi.spyOn(console, "log").mockImplementation((line: unknown) => {
      lines.push(String(line));
    });
    t = await startTestServer("pglite", { LOG_LEVEL: "debug" });
  });
  afterAll(async () => {
    await t?.close();
    vi.restoreAllMocks();
  });

  it("never carry a request's input: a secret in a connections.create config, accepted or refused", async () => {
    const tenant = await t.client(t.adminKey).tenants.create.mutate({ name: "logs" });
    const { key } = await t.client(t.adminKey).apiKeys.create.mutate({ tenantId: tenant.id, name: "k" });
    const secret = "pat-na1-LOGGED-SECRET-9f8e7d";
    const client = t.client(key);
    await client.connections.create.mutate({ connector: "hubspot", name: "ok", config: { accessToken: secret } });
    // Refused configs whose validation errors quote the value they refuse.
    const refused = [
      { accessToken: { token: secret } },
      { accessToken: secret, baseUrl: `not a url ${secret}` },
      { accessToken: secret, listPageSize: secret },
    ];
    for (const config of refused) {
      await expect(
        client.connections.create.mutate({ connector: "hubspot", name: "bad", config: config as never }),
      ).rejects.toMatchObject({ data: { code: "BAD_REQUEST" } });
    }
    // Debug lines were written (the level is on), and none of them holds the secret.
    await vi.waitFor(() =>
      expect(lines.filter((l) => l.includes('"procedure failed"')).length).toBeGreaterThanOrEqual(refused.length),
    );
    expect(lines.filter((l) => l.includes(secret))).toEqual([]);
  });
});
