import { Database } from "@tandem/core";
import type { AppRouter } from "@tandem/server";
import { dialects } from "@tandem/testkit";
import { TRPCClientError } from "@trpc/client";
import { Effect } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer, trpcCode } from "../support/server.ts";

const SECRET = "pat-na1-SUPER-SECRET-token-0123456789";

for (const dialect of dialects) {
  describe(`tRPC API over HTTP on ${dialect}`, () => {
    let t: TestServer;
    let keyA: string;
    let keyB: string;
    let tenantA: string;

    beforeAll(async () => {
      t = await startTestServer(dialect);
      const admin = t.client(t.adminKey);
      const a = await admin.tenants.create.mutate({ name: "Tenant A" });
      const b = await admin.tenants.create.mutate({ name: "Tenant B" });
      tenantA = a.id;
      keyA = (await admin.apiKeys.create.mutate({ tenantId: a.id, name: "a" })).key;
      keyB = (await admin.apiKeys.create.mutate({ tenantId: b.id, name: "b" })).key;
    });
    afterAll(() => t?.close());

    it("health is public", async () => {
      expect(await t.client().health.query()).toMatchObject({ status: "ok", ok: true });
    });

    it("a missing or wrong key gives UNAUTHORIZED; a tenant key cannot use admin procedures", async () => {
      expect(await trpcCode(t.client().connections.list.query())).toBe("UNAUTHORIZED");
      expect(await trpcCode(t.client("tdm_wrong").connections.list.query())).toBe("UNAUTHORIZED");
      expect(await trpcCode(t.client().tenants.list.query())).toBe("UNAUTHORIZED");
      expect(await trpcCode(t.client(keyA).tenants.list.query())).toBe("FORBIDDEN");
      expect(await trpcCode(t.client(t.adminKey).connections.list.query())).toBe("FORBIDDEN");
      const raw = await fetch(`${t.server.url}/trpc/connections.list`, { headers: { authorization: "Basic abc" } });
      expect(raw.status).toBe(401);
    });

    it("a revoked key stops working", async () => {
      const admin = t.client(t.adminKey);
      const created = await admin.apiKeys.create.mutate({ tenantId: tenantA, name: "temp" });
      expect(await t.client(created.key).connections.list.query()).toEqual([]);
      await admin.apiKeys.revoke.mutate({ id: created.id });
      expect(await trpcCode(t.client(created.key).connections.list.query())).toBe("UNAUTHORIZED");
    });

    it("creates, reads, updates and deletes connections without ever returning the secret", async () => {
      const a = t.client(keyA);
      const created = await a.connections.create.mutate({
        connector: "hubspot",
        name: "crm",
        config: { accessToken: SECRET, baseUrl: "http://127.0.0.1:9/hubspot" },
      });
      expect(created.config).toEqual({
        accessToken: "[redacted]",
        baseUrl: "http://127.0.0.1:9/hubspot",
        listPageSize: 100,
      });
      const responses = [
        created,
        await a.connections.get.query({ id: created.id }),
        await a.connections.list.query(),
        await a.connections.update.mutate({
          id: created.id,
          name: "crm-renamed",
          config: { baseUrl: "http://127.0.0.1:9/v2" },
        }),
      ];
      for (const response of responses) expect(JSON.stringify(response)).not.toContain(SECRET);
      expect(responses[3]).toMatchObject({ name: "crm-renamed", config: { baseUrl: "http://127.0.0.1:9/v2" } });

      const row = await t.server.runtime.runPromise(
        Effect.flatMap(Database, (db) =>
          db.query((k) =>
            k.selectFrom("connections").selectAll().where("id", "=", created.id).executeTakeFirstOrThrow(),
          ),
        ),
      );
      expect(JSON.stringify(row)).not.toContain(SECRET);
      expect(JSON.stringify(row)).not.toContain("SUPER-SECRET");
      expect(row.config_ciphertext).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);

      expect(await a.connections.delete.mutate({ id: created.id })).toEqual({ id: created.id });
      expect(await trpcCode(a.connections.get.query({ id: created.id }))).toBe("NOT_FOUND");
    });

    it("tenant B can neither read nor change tenant A's connections", async () => {
      const created = await t.client(keyA).connections.create.mutate({
        connector: "hubspot",
        name: "isolated",
        config: { accessToken: SECRET },
      });
      const b = t.client(keyB);
      expect(await trpcCode(b.connections.get.query({ id: created.id }))).toBe("NOT_FOUND");
      expect(await trpcCode(b.connections.update.mutate({ id: created.id, name: "stolen" }))).toBe("NOT_FOUND");
      expect(await trpcCode(b.connections.delete.mutate({ id: created.id }))).toBe("NOT_FOUND");
      expect((await b.connections.list.query()).map((c) => c.id)).not.toContain(created.id);
      expect((await t.client(keyA).connections.get.query({ id: created.id })).name).toBe("isolated");
    });

    it("invalid input gives BAD_REQUEST naming the field", async () => {
      const a = t.client(keyA);
      const issuesOf = async (call: Promise<unknown>) => {
        const error = await call.then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(TRPCClientError);
        const e = error as TRPCClientError<AppRouter>;
        expect(e.data?.code).toBe("BAD_REQUEST");
        return { paths: (e.data?.issues ?? []).map((i) => i.path), message: e.message };
      };
      const missingName = await issuesOf(a.connections.create.mutate({ connector: "hubspot", config: {} } as never));
      expect(missingName.paths).toContain("name");
      expect(missingName.message).toContain("name");

      const badConfig = await issuesOf(
        a.connections.create.mutate({
          connector: "hubspot",
          name: "x",
          config: { accessToken: "t", baseUrl: "ftp://x" },
        }),
      );
      expect(badConfig.paths).toEqual(["config.baseUrl"]);
      expect(badConfig.message).toContain("config.baseUrl");

      const noCredentials = await issuesOf(
        a.connections.create.mutate({ connector: "hubspot", name: "x", config: {} }),
      );
      expect(noCredentials.paths).toEqual(["config"]);
      expect(noCredentials.message).toContain("set accessToken or oauth");

      const badId = await issuesOf(a.connections.get.query({ id: "not-a-uuid" }));
      expect(badId.paths).toEqual(["id"]);

      const unknown = await issuesOf(a.connections.create.mutate({ connector: "nope", name: "x", config: {} }));
      expect(unknown.paths).toEqual(["connector"]);
    });

    it("a duplicate connection name gives CONFLICT", async () => {
      const a = t.client(keyA);
      await a.connections.create.mutate({ connector: "hubspot", name: "twice", config: { accessToken: "x" } });
      expect(
        await trpcCode(
          a.connections.create.mutate({ connector: "hubspot", name: "twice", config: { accessToken: "x" } }),
        ),
      ).toBe("CONFLICT");
    });

    it("answers the probes", async () => {
      expect((await fetch(`${t.server.url}/healthz`)).status).toBe(200);
      const ready = await fetch(`${t.server.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: "ready", detail: "database reachable, migrations applied" });
    });
  });
}

describe("OpenAPI document", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer("pglite");
  });
  afterAll(() => t?.close());

  it("describes every procedure with its input schema, and works as documented", async () => {
    const doc = (await (await fetch(`${t.server.url}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: any }> } }>>;
    };
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/trpc/health",
        "/trpc/connections.create",
        "/trpc/connections.list",
        "/trpc/tenants.create",
      ]),
    );
    const create = doc.paths["/trpc/connections.create"]?.post;
    const schema = create?.requestBody?.content["application/json"]?.schema;
    expect(schema.required).toEqual(["connector", "name", "config"]);
    expect(doc.paths["/trpc/connections.list"]?.get).toBeDefined();

    // A non-TypeScript client following the document: POST JSON, read result.data.
    const response = await fetch(`${t.server.url}/trpc/tenants.create`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "via openapi" }),
    });
    expect(((await response.json()) as { result: { data: { name: string } } }).result.data.name).toBe("via openapi");
  });
});

describe("GET /metrics", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer("pglite");
  });
  afterAll(() => t?.close());
  const asAdmin = () => ({ authorization: `Bearer ${t.adminKey}` });

  it("exposes Prometheus text with process metrics and request counters", async () => {
    await fetch(`${t.server.url}/healthz`);
    await fetch(`${t.server.url}/healthz`);
    await expect
      .poll(async () => {
        const text = await (await fetch(`${t.server.url}/metrics`, { headers: asAdmin() })).text();
        return /tandem_http_requests_total\{method="GET",route="\/healthz",status="200"\} (\d+)/.exec(text)?.[1];
      })
      .toMatch(/^[2-9]\d*$/);
    const response = await fetch(`${t.server.url}/metrics`, { headers: asAdmin() });
    expect(response.headers.get("content-type")).toContain("text/plain");
    const text = await response.text();
    expect(text).toContain("# TYPE tandem_http_request_duration_seconds histogram");
    expect(text).toMatch(
      /tandem_http_request_duration_seconds_bucket\{method="GET",route="\/healthz",le="\+Inf"\} \d+/,
    );
    expect(text).toContain("# TYPE process_cpu_user_seconds_total counter");
  });
});
