import type { AppRouter } from "@tandem/server";
import { TRPCClientError } from "@trpc/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

/*
 * Server-side request forgery refused where tenants name URLs: webhook subscriptions and the
 * connector hosts of a connection (HubSpot baseUrl, Salesforce instanceUrl and loginUrl). The
 * server runs with the default policy (no allow-list), as in production.
 */

const privateSpellings = [
  "http://169.254.169.254/latest/meta-data",
  "http://localhost:5432",
  "http://[::1]:8080",
  "http://10.0.0.1",
  "http://0",
  "http://2130706433",
  "http://0x7f000001",
  "http://[::ffff:127.0.0.1]",
];

describe("the egress policy through the API", () => {
  let t: TestServer;
  let key: string;

  beforeAll(async () => {
    t = await startTestServer("pglite", { TANDEM_EGRESS_ALLOW: "" });
    const admin = t.client(t.adminKey);
    const tenant = await admin.tenants.create.mutate({ name: "Tenant" });
    key = (await admin.apiKeys.create.mutate({ tenantId: tenant.id, name: "k" })).key;
  });
  afterAll(() => t?.close());

  /** The BAD_REQUEST's field paths (fails the test on any other outcome). */
  const refusedPaths = async (call: Promise<unknown>) => {
    const error = await call.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TRPCClientError);
    const e = error as TRPCClientError<AppRouter>;
    expect(e.data?.code).toBe("BAD_REQUEST");
    expect(e.message).toContain("egress policy");
    return (e.data?.issues ?? []).map((i) => i.path);
  };

  it.each(privateSpellings)("webhooks.create refuses %s", async (url) => {
    const paths = await refusedPaths(t.client(key).webhooks.create.mutate({ url, events: ["sync.completed"] }));
    expect(paths).toEqual(["url"]);
  });

  it.each(privateSpellings)("connections.create refuses a HubSpot baseUrl of %s", async (baseUrl) => {
    const paths = await refusedPaths(
      t.client(key).connections.create.mutate({
        connector: "hubspot",
        name: `hubspot ${baseUrl}`,
        config: { accessToken: "pat-na1-token", baseUrl },
      }),
    );
    expect(paths).toEqual(["config.baseUrl"]);
  });

  it("connections.create refuses Salesforce's instanceUrl and loginUrl, naming each", async () => {
    const paths = await refusedPaths(
      t.client(key).connections.create.mutate({
        connector: "salesforce",
        name: "salesforce",
        config: {
          instanceUrl: "http://2130706433",
          loginUrl: "http://169.254.169.254",
          clientId: "id",
          clientSecret: "secret",
          refreshToken: "refresh",
        },
      }),
    );
    expect(paths.sort()).toEqual(["config.instanceUrl", "config.loginUrl"]);
  });

  it("accepts public hosts, and connections.update refuses a private one later", async () => {
    const a = t.client(key);
    const created = await a.connections.create.mutate({
      connector: "hubspot",
      name: "public",
      config: { accessToken: "pat-na1-token", baseUrl: "https://api.hubapi.com" },
    });
    await a.webhooks.create.mutate({ url: "https://hooks.example.com/tandem", events: ["sync.completed"] });
    const paths = await refusedPaths(
      a.connections.update.mutate({ id: created.id, config: { baseUrl: "http://[::ffff:127.0.0.1]:5432" } }),
    );
    expect(paths).toEqual(["config.baseUrl"]);
  });
});
