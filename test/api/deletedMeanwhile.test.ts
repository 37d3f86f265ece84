import { hubSpotFakeToken, type ServedHubSpotFake, serveHubSpotFake } from "@tandem/testkit";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

/*
 * A request that changes a record while another request deletes the record's connection. The
 * fuzz run found these answering 500: the record's change looked the connection up, then the
 * delete committed, and the change's insert broke the foreign key of the rows it writes.
 *
 * The race is made deterministic on PostgreSQL: the test deletes the connection in a transaction
 * it holds open, so the request finds the connection (the delete is not committed) and then waits
 * on that row's lock when it writes; the test commits once the request is seen waiting.
 */

/** The error a rejected call answered (fails the test if it succeeded). */
const refusal = async (call: Promise<unknown>) => {
  try {
    await call;
  } catch (error) {
    const e = error as { message: string; data?: { code?: string; httpStatus?: number } };
    return { code: e.data?.code, httpStatus: e.data?.httpStatus, message: e.message };
  }
  throw new Error("the call was accepted");
};

describe("a record change racing the deletion of its connection", () => {
  let t: TestServer;
  let fake: ServedHubSpotFake;
  let key: string;
  let db: pg.Client;

  beforeAll(async () => {
    fake = await serveHubSpotFake({ port: 0 });
    t = await startTestServer("postgres");
    const admin = t.client(t.adminKey);
    const tenant = await admin.tenants.create.mutate({ name: "racing" });
    key = (await admin.apiKeys.create.mutate({ tenantId: tenant.id, name: "k" })).key;
    db = new pg.Client({ connectionString: t.databaseUrl });
    await db.connect();
  }, 120_000);
  afterAll(async () => {
    await db?.end();
    await t?.close();
    await fake?.close();
  });

  /** Deletes the connection in an open transaction, runs `request`, commits once it waits on the delete. */
  const deleteDuring = async (connectionId: string, request: () => Promise<unknown>) => {
    await db.query("BEGIN");
    await db.query("DELETE FROM connections WHERE id = $1", [connectionId]);
    const answer = refusal(request());
    const deadline = Date.now() + 20_000;
    let waiting = false;
    while (!waiting && Date.now() < deadline) {
      const { rows } = await db.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
      );
      waiting = rows[0].n > 0;
      if (!waiting) await new Promise((r) => setTimeout(r, 20));
    }
    await db.query("COMMIT");
    expect(waiting, "the request reached the deleted connection's lock").toBe(true);
    return answer;
  };

  const newConnection = async (name: string) =>
    (
      await t.client(key).connections.create.mutate({
        connector: "hubspot",
        name,
        config: { baseUrl: fake.url, accessToken: hubSpotFakeToken },
      })
    ).id;

  it("a create answers NOT_FOUND, not an internal error, and keeps nothing", async () => {
    const connectionId = await newConnection("create");
    const answer = await deleteDuring(connectionId, () =>
      t.client(key).records.create.mutate({
        connectionId,
        entity: "contacts",
        localId: "host-1",
        fields: { firstName: "Ada", email: "ada@example.com" },
      }),
    );
    expect(answer).toMatchObject({ code: "NOT_FOUND", httpStatus: 404 });
    expect(answer.message).toMatch(/deleted while it ran/);
    const { rows } = await db.query("SELECT count(*)::int AS n FROM records WHERE connection_id = $1", [connectionId]);
    expect(rows[0].n).toBe(0);
  }, 60_000);

  it("a push asked for answers NOT_FOUND, not an internal error", async () => {
    const connectionId = await newConnection("push");
    const answer = await deleteDuring(connectionId, () =>
      t.client(key).sync.trigger.mutate({ connectionId, entity: "contacts", mode: "push" }),
    );
    expect(answer).toMatchObject({ code: "NOT_FOUND", httpStatus: 404 });
    const { rows } = await db.query("SELECT count(*)::int AS n FROM jobs WHERE connection_id = $1", [connectionId]);
    expect(rows[0].n).toBe(0);
  }, 60_000);
});
