import { hubSpotFakeToken, queryRows, type ServedHubSpotFake, serveHubSpotFake } from "@tandem/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer, trpcCode } from "../support/server.ts";

/*
 * `sync.plan`, the dry run of a first two-way sync, through the API on PostgreSQL against the
 * HubSpot fake over loopback HTTP. The connection is paused while the host creates its records,
 * so nothing is pushed until the plan was read; then it is resumed, and the push does what the
 * plan said.
 */

const poll = { timeout: 30_000, interval: 100 };

/** Every row Tandem keeps about the records, their pushes, conflicts and sync state, in a fixed order. */
const snapshot = (url: string) =>
  queryRows(url, [
    "select * from records order by connection_id, entity, external_id",
    "select * from push_outbox order by id",
    "select * from conflicts order by id",
    "select * from sync_cursors order by connection_id, entity",
  ]);

describe("sync.plan: what a first two-way sync would do, written nowhere", () => {
  let t: TestServer;
  let fake: ServedHubSpotFake;
  let key: string;
  let connectionId: string;
  const scope = () => ({ connectionId, entity: "contacts" });
  const client = () => t.client(key);

  beforeAll(async () => {
    fake = await serveHubSpotFake({ port: 0 });
    t = await startTestServer("postgres");
    const admin = t.client(t.adminKey);
    const tenant = await admin.tenants.create.mutate({ name: "plan" });
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

  it("reports matched, to create remotely, to create locally and ambiguous; changes nothing; the push then does it", async () => {
    const a = client();
    const store = fake.fake.store;
    const make = (properties: Record<string, unknown>) => {
      const result = store.create("contacts", properties);
      if ("failure" in result) throw new Error(result.failure.message);
      return result.object;
    };
    const ann = make({ email: "ann@example.com", firstname: "Ann", lastname: "Smith" });
    const bob = make({ email: "bob@example.com", firstname: "Bob", lastname: "Smith" });
    const vic = make({ email: "vic@example.com", firstname: "Vic", lastname: "Jones" });

    await a.sync.pause.mutate({ connectionId });
    await a.records.create.mutate({ ...scope(), localId: "h-ann", fields: { email: "ANN@example.com " } });
    await a.records.create.mutate({ ...scope(), localId: "h-new", fields: { email: "new@example.com" } });
    await a.records.create.mutate({ ...scope(), localId: "h-nomail", fields: { firstName: "No", lastName: "Mail" } });
    await a.records.create.mutate({ ...scope(), localId: "h-smith", fields: { lastName: "Smith" } });

    const db = t.databaseUrl!;
    const dbBefore = await snapshot(db);
    // Something to compare: the four local records and their four pending creates.
    expect(dbBefore[0]).toHaveLength(4);
    expect(dbBefore[1]).toHaveLength(4);
    const fakeBefore = JSON.stringify(fake.fake.live("contacts"));
    const requestsBefore = fake.fake.requests().length;

    const plan = await a.sync.plan.query(scope());
    expect(plan.matchKey).toEqual(["email"]);
    expect(plan.counts).toEqual({ matched: 1, toCreateRemotely: 3, toCreateLocally: 2, ambiguous: 0 });
    expect(plan.matched).toEqual([
      expect.objectContaining({ localId: "h-ann", externalId: ann.id, key: "email:ann@example.com" }),
    ]);
    expect(plan.toCreateRemotely.map((r) => r.localId).sort()).toEqual(["h-new", "h-nomail", "h-smith"]);
    // Not stored yet: a pull creates them here. Ann is matched, so she is not among them.
    expect(plan.toCreateLocally.map((r) => r.externalId).sort()).toEqual([bob.id, vic.id].sort());

    // By last name (an override of the key): two HubSpot Smiths for the host's one, ambiguous.
    const byName = await a.sync.plan.query({ ...scope(), matchKey: ["lastName"] });
    expect(byName.matchKey).toEqual(["lastName"]);
    expect(byName.counts).toEqual({ matched: 0, toCreateRemotely: 3, toCreateLocally: 3, ambiguous: 1 });
    const smith = byName.ambiguous.find((r) => r.localId === "h-smith")!;
    expect(smith.reason).toBe("vendor");
    expect(smith.candidates.map((c) => c.externalId).sort()).toEqual([ann.id, bob.id].sort());
    expect(smith.candidates.find((c) => c.externalId === bob.id)!.fields).toMatchObject({ firstName: "Bob" });

    // A dry run: not a row of Tandem's changed, not one write reached HubSpot.
    expect(await snapshot(db)).toEqual(dbBefore);
    expect(JSON.stringify(fake.fake.live("contacts"))).toBe(fakeBefore);
    expect(
      fake.fake
        .requests()
        .slice(requestsBefore)
        .every((r) => r.method === "GET" || r.path.includes("/search")),
    ).toBe(true);

    // Bad input is refused, naming the field.
    expect(await trpcCode(a.sync.plan.query({ ...scope(), matchKey: ["shoeSize"] }))).toBe("BAD_REQUEST");
    expect(await trpcCode(a.sync.plan.query({ connectionId, entity: "unicorns" }))).toBe("BAD_REQUEST");

    // HubSpot refusing the credentials: the plan cannot be made, said so, not a server fault.
    fake.fake.tokens.delete(hubSpotFakeToken);
    expect(await trpcCode(a.sync.plan.query(scope()))).toBe("PRECONDITION_FAILED");
    fake.fake.tokens.add(hubSpotFakeToken);

    // Resumed: the push matches as planned. Ann keeps HubSpot's id; the others are created.
    await a.sync.resume.mutate({ connectionId });
    await expect
      .poll(async () => (await a.records.get.query({ ...scope(), localId: "h-ann" })).externalId, poll)
      .toBe(ann.id);
    await expect.poll(() => fake.fake.live("contacts").length, poll).toBe(3 + 3);
    expect(fake.fake.live("contacts").filter((o) => o.properties.email === "ann@example.com")).toHaveLength(1);
  });
});
