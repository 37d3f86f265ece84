import { hubSpotFakeToken, type ServedHubSpotFake, serveHubSpotFake } from "@tandem/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

/*
 * Two-way sync through the API, on PostgreSQL, against the HubSpot fake served over loopback
 * HTTP. Nothing in this file asks for a push: no `sync.trigger`, no `sync.push` of a trigger's
 * kind. The server's worker drains the outbox by itself, and each test polls the fake until it
 * holds the change.
 */

/** The error a rejected call answered (fails the test if it succeeded). */
const refusal = async (call: Promise<unknown>) => {
  try {
    await call;
  } catch (error) {
    return (error as { data?: { code?: string; issues?: Array<{ path: string; message: string }> } }).data;
  }
  throw new Error("the call was accepted");
};

const poll = { timeout: 30_000, interval: 100 };

describe("local changes through the API reach HubSpot by themselves", () => {
  let t: TestServer;
  let fake: ServedHubSpotFake;
  let key: string;
  let connectionId: string;
  const scope = () => ({ connectionId, entity: "contacts" });
  const client = () => t.client(key);

  beforeAll(async () => {
    fake = await serveHubSpotFake({ port: 0 });
    // Three attempts and short backoffs: a push the fake keeps refusing is dead within a second.
    t = await startTestServer("postgres", { TANDEM_MAX_ATTEMPTS: "3", TANDEM_MAX_BACKOFF_MS: "200" });
    const admin = t.client(t.adminKey);
    const tenant = await admin.tenants.create.mutate({ name: "two-way" });
    key = (await admin.apiKeys.create.mutate({ tenantId: tenant.id, name: "k" })).key;
    const connection = await client().connections.create.mutate({
      connector: "hubspot",
      name: "crm",
      config: { baseUrl: fake.url, accessToken: hubSpotFakeToken },
    });
    connectionId = connection.id;
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    await fake?.close();
  });

  it("a contact created, edited and deleted through the API: HubSpot creates, updates and archives it", async () => {
    const a = client();
    const created = await a.records.create.mutate({
      ...scope(),
      localId: "host-1",
      fields: { firstName: "Ada", lastName: "Lovelace", email: "ada@example.com" },
    });
    expect(created).toMatchObject({ externalId: null, localId: "host-1", syncStatus: "pending" });
    // The email is a critical field: the create goes at once.
    expect(created.pushImmediately).toBe(true);
    const remote = () => fake.fake.live("contacts").find((o) => o.properties.email === "ada@example.com");
    await expect.poll(() => remote() !== undefined, poll).toBe(true);
    await expect
      .poll(async () => (await a.records.get.query({ ...scope(), localId: "host-1" })).syncStatus, poll)
      .toBe("synced");
    const stored = await a.records.get.query({ ...scope(), localId: "host-1" });
    expect(stored.externalId).toBe(remote()!.id);

    const edited = await a.records.update.mutate({ ...scope(), localId: "host-1", fields: { jobTitle: "Analyst" } });
    expect(edited).toMatchObject({ syncStatus: "pending", pushImmediately: false, localId: "host-1" });
    await expect
      .poll(() => fake.fake.store.get("contacts", stored.externalId!)?.properties.jobtitle, poll)
      .toBe("Analyst");

    const deleted = await a.records.delete.mutate({ ...scope(), externalId: stored.externalId! });
    expect(deleted.deletedAt).not.toBeNull();
    await expect.poll(() => fake.fake.store.get("contacts", stored.externalId!)?.archived, poll).toBe(true);
    await expect
      .poll(async () => (await a.records.get.query({ ...scope(), localId: "host-1" })).syncStatus, poll)
      .toBe("synced");

    // The change feed carries both ids.
    const feed = await a.records.list.query({ ...scope(), limit: 100 });
    expect(feed.items.find((r) => r.localId === "host-1")).toMatchObject({ externalId: stored.externalId });
  });

  it("refuses a change the contact schema does not allow, naming the field, and stores nothing", async () => {
    const a = client();
    const created = await a.records.create.mutate({ ...scope(), localId: "host-2", fields: { firstName: "Bo" } });
    expect(created.syncStatus).toBe("pending");
    const wrongType = await refusal(
      a.records.update.mutate({ ...scope(), localId: "host-2", fields: { jobTitle: 12345 } }),
    );
    expect(wrongType).toMatchObject({ code: "BAD_REQUEST", issues: [{ path: "fields.jobTitle" }] });
    const archived = await refusal(
      a.records.update.mutate({ ...scope(), localId: "host-2", fields: { archived: true } }),
    );
    expect(archived).toMatchObject({ code: "BAD_REQUEST", issues: [{ path: "fields.archived" }] });
    expect(archived!.issues![0]!.message).toContain("records.delete");
    const unknown = await refusal(a.records.create.mutate({ ...scope(), fields: { shoeSize: 42 } }));
    expect(unknown).toMatchObject({ code: "BAD_REQUEST", issues: [{ path: "fields.shoeSize" }] });
    const batch = await refusal(
      a.sync.push.mutate({
        ...scope(),
        changes: [
          { externalId: "1", fields: { firstName: "fine" } },
          { externalId: "2", fields: { lastName: false } },
        ],
      }),
    );
    expect(batch).toMatchObject({ code: "BAD_REQUEST", issues: [{ path: "changes.1.fields.lastName" }] });
    const bothIds = await refusal(a.records.get.query({ ...scope(), localId: "host-2", externalId: "1" }));
    expect(bothIds).toMatchObject({ code: "BAD_REQUEST" });
    const taken = await refusal(a.records.create.mutate({ ...scope(), localId: "host-2", fields: {} }));
    expect(taken).toMatchObject({ code: "CONFLICT" });

    await expect
      .poll(async () => (await a.records.get.query({ ...scope(), localId: "host-2" })).syncStatus, poll)
      .toBe("synced");
    const stored = await a.records.get.query({ ...scope(), localId: "host-2" });
    expect(stored.data).toMatchObject({ firstName: "Bo", jobTitle: null });
    expect(fake.fake.store.get("contacts", stored.externalId!)!.properties.jobtitle ?? null).toBeNull();
  });

  it("a push HubSpot keeps refusing is retried, then listed dead; retried from the list, it lands", async () => {
    const a = client();
    const created = await a.records.create.mutate({ ...scope(), localId: "host-3", fields: { firstName: "Cy" } });
    expect(created.syncStatus).toBe("pending");
    await expect
      .poll(async () => (await a.records.get.query({ ...scope(), localId: "host-3" })).syncStatus, poll)
      .toBe("synced");
    const id = (await a.records.get.query({ ...scope(), localId: "host-3" })).externalId!;

    fake.fake.failNext(
      { kind: "status", status: 503 },
      { kind: "status", status: 503 },
      { kind: "status", status: 503 },
    );
    await a.records.update.mutate({ ...scope(), externalId: id, fields: { jobTitle: "Persistent" } });
    await expect.poll(async () => (await a.sync.deadPushes.list.query({ connectionId })).length, poll).toBe(1);
    const [dead] = await a.sync.deadPushes.list.query({ connectionId });
    expect(dead).toMatchObject({ externalId: id, operation: "update", attempts: 3, entity: "contacts" });
    expect(dead!.error).toContain("Unavailable");
    const failed = await a.records.get.query({ ...scope(), externalId: id });
    expect(failed.syncStatus).toBe("failed");
    expect(failed.syncError).toContain("Unavailable");

    expect(await a.sync.deadPushes.retry.mutate({ id: dead!.id })).toMatchObject({ id: dead!.id });
    await expect.poll(() => fake.fake.store.get("contacts", id)?.properties.jobtitle, poll).toBe("Persistent");
    await expect
      .poll(async () => (await a.records.get.query({ ...scope(), externalId: id })).syncStatus, poll)
      .toBe("synced");
    expect(await a.sync.deadPushes.list.query({ connectionId })).toEqual([]);
    const gone = await refusal(a.sync.deadPushes.retry.mutate({ id: dead!.id }));
    expect(gone).toMatchObject({ code: "NOT_FOUND" });
  });

  it("sync.trigger in mode push still works: it drains the entity's pending changes now", async () => {
    const a = client();
    const created = await a.records.create.mutate({ ...scope(), localId: "host-4", fields: { firstName: "Di" } });
    expect(created.syncStatus).toBe("pending");
    const { jobId, status } = await a.sync.trigger.mutate({ ...scope(), mode: "push" });
    expect(status).toBe("queued");
    await expect.poll(async () => (await a.jobs.get.query({ id: jobId })).job.status, poll).toBe("completed");
    await expect
      .poll(async () => (await a.records.get.query({ ...scope(), localId: "host-4" })).syncStatus, poll)
      .toBe("synced");
    expect(fake.fake.live("contacts").filter((o) => o.properties.firstname === "Di")).toHaveLength(1);
  });
});
