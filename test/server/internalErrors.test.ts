import { Database } from "@tandem/core";
import { Effect } from "effect";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

/**
 * An internal error answers only that it is one: a library's message ("timeout exceeded when
 * trying to connect", the pool's) is no business of the caller's, and stays in the log.
 */
describe("internal errors over the tRPC API", () => {
  let t: TestServer;
  let tenantKey: string;
  const logLines: Array<string> = [];

  beforeAll(async () => {
    vi.spyOn(console, "log").mockImplementation((...args: Array<unknown>) => {
      logLines.push(args.map(String).join(" "));
    });
    t = await startTestServer("postgres");
    const admin = t.client(t.adminKey);
    const tenant = await admin.tenants.create.mutate({ name: "internal errors" });
    tenantKey = (await admin.apiKeys.create.mutate({ tenantId: tenant.id, name: "k" })).key;
    // The database driver gone: every statement, the API key's lookup included, now fails inside.
    await t.server.runtime.runPromise(Effect.flatMap(Database, (db) => Effect.promise(() => db.kysely.destroy())));
  }, 120_000);
  afterAll(async () => {
    await t?.close().catch(() => undefined);
    vi.restoreAllMocks();
  });

  it("answer a generic message, whether they fail the key lookup or the procedure; the log has the detail", async () => {
    for (const [procedure, key] of [
      ["connections.list", () => tenantKey],
      ["tenants.list", () => t.adminKey],
    ] as const) {
      const response = await fetch(`${t.server.url}/trpc/${procedure}`, {
        headers: { authorization: `Bearer ${key()}` },
      });
      expect(response.status, procedure).toBe(500);
      const body = (await response.json()) as { error: { message: string; data: { code: string } } };
      expect(body.error.data.code).toBe("INTERNAL_SERVER_ERROR");
      expect(body.error.message, procedure).toBe("internal error");
    }
    expect(logLines.some((line) => line.includes("driver has already been destroyed"))).toBe(true);
  });
});
