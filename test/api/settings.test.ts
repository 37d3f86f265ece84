import { hubSpotFakeToken, queryRows, type ServedHubSpotFake, serveHubSpotFake } from "@tandem/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

/*
 * Per-connection sync settings through the API (`connections.settings.get|set`), on PostgreSQL,
 * against the HubSpot fake: defaults, validation naming the path, the LLM key's redaction, and
 * settings that change what the API accepts (direction, critical fields).
 */

type IssueData = { code?: string; issues?: Array<{ path: string; message: string }> };

/** The error a rejected call answered (fails the test if it succeeded). */
const refusal = async (call: Promise<unknown>): Promise<IssueData> => {
  try {
    await call;
  } catch (error) {
    return ((error as { data?: IssueData }).data ?? {}) as IssueData;
  }
  throw new Error("the call was accepted");
};

describe("connections.settings through the API", () => {
  let t: TestServer;
  let fake: ServedHubSpotFake;
  let key: string;
  let otherKey: string;
  let connectionId: string;
  const client = () => t.client(key);

  beforeAll(async () => {
    fake = await serveHubSpotFake({ port: 0 });
    t = await startTestServer("postgres");
    const admin = t.client(t.adminKey);
    const tenant = await admin.tenants.create.mutate({ name: "settings" });
    key = (await admin.apiKeys.create.mutate({ tenantId: tenant.id, name: "k" })).key;
    const other = await admin.tenants.create.mutate({ name: "someone-else" });
    otherKey = (await admin.apiKeys.create.mutate({ tenantId: other.id, name: "k" })).key;
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

  it("get answers every entity's defaults, marked as defaults; another tenant gets NOT_FOUND", async () => {
    const settings = await client().connections.settings.get.query({ id: connectionId });
    expect(Object.keys(settings.entities).sort()).toEqual(expect.arrayContaining(["companies", "contacts"]));
    const contacts = settings.entities.contacts!;
    expect(contacts).toMatchObject({
      enabled: true,
      direction: "both",
      conflictPolicy: { kind: "manual" },
      criticalFields: ["email", "lifecycleStage"],
      matchKey: null,
      deleteAgainstEdit: "edit-wins",
      // The test server's own default crons (startTestServer sets TANDEM_*_CRON), not the built-in ones.
      schedules: { delta: "0 0 1 1 *", reconcile: "0 0 1 1 *", pushIntervalMs: null },
    });
    expect(Object.values(contacts.sources).every((s) => s === "default")).toBe(true);
    expect(await refusal(t.client(otherKey).connections.settings.get.query({ id: connectionId }))).toMatchObject({
      code: "NOT_FOUND",
    });
  });

  it("refuses unknown entities, unknown fields, bad crons and bad shapes with BAD_REQUEST naming the path", async () => {
    const set = (entities: Record<string, unknown>) =>
      refusal(client().connections.settings.set.mutate({ id: connectionId, entities }));
    expect(await set({ tickets: { enabled: false } })).toMatchObject({
      code: "BAD_REQUEST",
      issues: [{ path: "entities.tickets" }],
    });
    const unknownField = await set({ contacts: { criticalFields: ["email", "shoeSize"] } });
    expect(unknownField).toMatchObject({
      code: "BAD_REQUEST",
      issues: [{ path: "entities.contacts.criticalFields.1" }],
    });
    expect(unknownField.issues![0]!.message).toContain("shoeSize");
    expect(await set({ contacts: { matchKey: ["mail"] } })).toMatchObject({
      issues: [{ path: "entities.contacts.matchKey.0" }],
    });
    expect(
      await set({
        contacts: { conflictPolicy: { kind: "source-priority", default: "remote", fieldOwners: { nope: "local" } } },
      }),
    ).toMatchObject({ issues: [{ path: "entities.contacts.conflictPolicy.fieldOwners.nope" }] });
    expect(await set({ contacts: { schedules: { delta: "every tuesday" } } })).toMatchObject({
      issues: [{ path: "entities.contacts.schedules.delta" }],
    });
    expect(await set({ contacts: { schedules: { reconcile: 45 * 60_000 } } })).toMatchObject({
      issues: [{ path: "entities.contacts.schedules.reconcile" }],
    });
    const badShape = await set({ contacts: { direction: "sideways" } });
    expect(badShape.code).toBe("BAD_REQUEST");
    expect(badShape.issues!.some((i) => i.path.startsWith("entities.contacts.direction"))).toBe(true);
    // Nothing of the refused sets was stored.
    const after = await client().connections.settings.get.query({ id: connectionId });
    expect(Object.values(after.entities.contacts!.sources).every((s) => s === "default")).toBe(true);
  });

  it("stores the LLM resolver's key encrypted and never returns it; a set without the key keeps it", async () => {
    const a = client();
    const answer = await a.connections.settings.set.mutate({
      id: connectionId,
      entities: {
        companies: {
          conflictPolicy: { kind: "llm", baseUrl: "https://llm.test/v1", model: "m1", apiKey: "sk-very-secret" },
        },
      },
    });
    expect(JSON.stringify(answer)).not.toContain("sk-very-secret");
    expect(answer.entities.companies).toMatchObject({
      conflictPolicy: { kind: "llm", baseUrl: "https://llm.test/v1", model: "m1", apiKey: "[redacted]" },
      sources: { conflictPolicy: "set", enabled: "default" },
    });
    const read = await a.connections.settings.get.query({ id: connectionId });
    expect(JSON.stringify(read)).not.toContain("sk-very-secret");
    // The model changes; the key is not re-sent and stays.
    const again = await a.connections.settings.set.mutate({
      id: connectionId,
      entities: { companies: { conflictPolicy: { kind: "llm", baseUrl: "https://llm.test/v1", model: "m2" } } },
    });
    expect(again.entities.companies!.conflictPolicy).toMatchObject({ model: "m2", apiKey: "[redacted]" });
    // null: back to the defaults.
    const reset = await a.connections.settings.set.mutate({ id: connectionId, entities: { companies: null } });
    expect(reset.entities.companies).toMatchObject({
      conflictPolicy: { kind: "manual" },
      sources: { conflictPolicy: "default" },
    });
  });

  it("direction pull refuses local changes; critical fields set per connection push a change at once", async () => {
    const a = client();
    const scope = { connectionId, entity: "contacts" };
    const set = await a.connections.settings.set.mutate({
      id: connectionId,
      entities: { contacts: { direction: "pull" } },
    });
    expect(set.entities.contacts).toMatchObject({ direction: "pull", sources: { direction: "set" } });
    const refused = await refusal(
      a.records.create.mutate({ ...scope, localId: "pull-1", fields: { firstName: "Al" } }),
    );
    expect(refused.code).toBe("PRECONDITION_FAILED");
    expect(await refusal(a.sync.trigger.mutate({ ...scope, mode: "push" }))).toMatchObject({
      code: "PRECONDITION_FAILED",
    });

    await a.connections.settings.set.mutate({
      id: connectionId,
      entities: { contacts: { direction: "both", criticalFields: ["jobTitle"] } },
    });
    const created = await a.records.create.mutate({ ...scope, localId: "crit-1", fields: { firstName: "Al" } });
    expect(created.pushImmediately).toBe(false);
    const edited = await a.records.update.mutate({ ...scope, localId: "crit-1", fields: { jobTitle: "CTO" } });
    expect(edited.pushImmediately).toBe(true);
    // email is no longer critical on this connection.
    const mailed = await a.records.update.mutate({ ...scope, localId: "crit-1", fields: { email: "al@example.com" } });
    expect(mailed.pushImmediately).toBe(false);
  });
});

describe("connections.settings shows the schedules the server runs", () => {
  it("a server started with its own default crons shows them as the defaults, the crons its Scheduler set", async () => {
    const fake = await serveHubSpotFake({ port: 0 });
    const t = await startTestServer("postgres", {
      TANDEM_DELTA_CRON: "*/7 * * * *",
      // HubSpot's entities report deletions by delta: their default reconciliation is the safety net.
      TANDEM_RECONCILE_SAFETY_NET_CRON: "45 4 * * 6",
    });
    try {
      const admin = t.client(t.adminKey);
      const tenant = await admin.tenants.create.mutate({ name: "crons" });
      const key = (await admin.apiKeys.create.mutate({ tenantId: tenant.id, name: "k" })).key;
      const { id } = await t.client(key).connections.create.mutate({
        connector: "hubspot",
        name: "crm",
        config: { baseUrl: fake.url, accessToken: hubSpotFakeToken },
      });
      const settings = await t.client(key).connections.settings.get.query({ id });
      for (const entity of ["contacts", "companies"]) {
        expect(settings.entities[entity]).toMatchObject({
          schedules: { delta: "*/7 * * * *", reconcile: "45 4 * * 6" },
          sources: { "schedules.delta": "default", "schedules.reconcile": "default" },
        });
      }
      // What the settings show is what runs: the schedules the Scheduler stored for the connection.
      const [rows] = await queryRows(t.databaseUrl!, [
        `select name, cron from schedules where name like 'sync:${id}:contacts:%' order by name`,
      ]);
      expect(rows).toEqual([
        { name: `sync:${id}:contacts:delta`, cron: "*/7 * * * *" },
        { name: `sync:${id}:contacts:reconcile`, cron: "45 4 * * 6" },
      ]);
    } finally {
      await t.close();
      await fake.close();
    }
  }, 120_000);
});
