import { hubSpotFakeToken, type ServedHubSpotFake, serveHubSpotFake } from "@tandem/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContactsTable } from "../../examples/crm-sync/src/contactsTable.ts";
import { CrmSync } from "../../examples/crm-sync/src/crmSync.ts";
import { tandemClient } from "../../examples/crm-sync/src/tandem.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

/*
 * examples/crm-sync, run as CI runs it: a Tandem server (PostgreSQL) and the HubSpot sandbox fake
 * over node:http; the app's own table in its own PGlite. Nothing here asks for a push: the app
 * only calls Tandem through its typed client, and Tandem pushes by itself. Both sides must
 * converge: a local create reaches the fake, a fake edit reaches the app's table, a local
 * delete archives the contact in the fake.
 */

const poll = { timeout: 30_000, interval: 200 };

describe("examples/crm-sync against a server and the HubSpot sandbox", () => {
  let t: TestServer;
  let fake: ServedHubSpotFake;
  let table: ContactsTable;
  let app: CrmSync;

  beforeAll(async () => {
    // The app's database first: PGlite takes a while to start, and a keep-alive connection to
    // the server left idle that long may be closed under the client's next request.
    table = await ContactsTable.open();
    fake = await serveHubSpotFake({ port: 0 });
    fake.fake.seedContacts(5);
    t = await startTestServer("postgres");
    const admin = t.client(t.adminKey);
    const tenant = await admin.tenants.create.mutate({ name: "crm" });
    const key = (await admin.apiKeys.create.mutate({ tenantId: tenant.id, name: "crm" })).key;
    const tandem = tandemClient(t.server.url, key);
    const connection = await tandem.connections.create.mutate({
      connector: "hubspot",
      name: "crm",
      config: { baseUrl: fake.url, accessToken: hubSpotFakeToken },
    });
    app = new CrmSync(tandem, table, connection.id);
  }, 120_000);
  afterAll(async () => {
    await table?.close();
    await t?.close();
    await fake?.close();
  });

  it("reads HubSpot's contacts, and its creates, edits and deletes converge on both sides", async () => {
    // HubSpot's contacts reach the app's table through the change feed.
    await app.refresh("full");
    await expect
      .poll(async () => {
        await app.pull();
        return (await table.all()).length;
      }, poll)
      .toBe(5);

    // A local create reaches HubSpot by itself; HubSpot's id comes back through the feed.
    const ada = await app.create({ email: "ada@example.com", firstName: "Ada", lastName: "Lovelace" });
    expect(ada.tandemId).toBeNull();
    const atHubSpot = () => fake.fake.live("contacts").find((o) => o.properties.email === "ada@example.com");
    await expect.poll(() => atHubSpot()?.properties.lastname, poll).toBe("Lovelace");
    await expect
      .poll(async () => {
        await app.pull();
        return (await table.get(ada.id))?.tandemId;
      }, poll)
      .toBe(atHubSpot()!.id);
    expect(await table.get(ada.id)).toMatchObject({ syncStatus: "synced", deleted: false });

    // A local edit, by the app's own id.
    await app.edit(ada.id, { lastName: "King" });
    await expect.poll(() => atHubSpot()?.properties.lastname, poll).toBe("King");

    // An edit made in HubSpot reaches the app's table (after Tandem's next pull).
    const [other] = fake.fake.live("contacts").filter((o) => o.properties.email !== "ada@example.com");
    const update = fake.fake.store.update("contacts", other!.id, { firstname: "Edited-in-HubSpot" });
    expect("object" in update).toBe(true);
    await expect
      .poll(async () => {
        await app.refresh();
        await app.pull();
        return (await table.byTandemId(other!.id))?.firstName;
      }, poll)
      .toBe("Edited-in-HubSpot");

    // A local delete archives the contact in HubSpot.
    await app.delete(ada.id);
    expect((await table.all()).some((c) => c.id === ada.id)).toBe(false);
    const adaId = (await table.get(ada.id))!.tandemId!;
    await expect.poll(() => fake.fake.store.get("contacts", adaId)?.archived, poll).toBe(true);

    // Converged: the app's live contacts are HubSpot's live contacts, field for field.
    await expect
      .poll(async () => {
        await app.pull();
        const mine = (await table.all()).map((c) => [c.tandemId, c.email, c.firstName, c.lastName]);
        const theirs = fake.fake
          .live("contacts")
          .map((o) => [
            o.id,
            o.properties.email ?? null,
            o.properties.firstname ?? null,
            o.properties.lastname ?? null,
          ]);
        const sort = (rows: Array<Array<unknown>>) => rows.map((r) => JSON.stringify(r)).sort();
        return JSON.stringify(sort(mine)) === JSON.stringify(sort(theirs));
      }, poll)
      .toBe(true);
    const overview = await app.status();
    expect(overview.byStatus).toEqual({ synced: 5 });
    expect(overview.conflicts).toEqual([]);
    expect(overview.deadPushes).toEqual([]);
  });
});
