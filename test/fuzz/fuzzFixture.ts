import { hubSpotFakeToken, serveHubSpotFake } from "@tandem/testkit";
import { startTestServer, type TestServer } from "../support/server.ts";
import type { FuzzIds, FuzzKeys } from "./apiFuzzer.ts";

export interface FuzzFixture {
  readonly t: TestServer;
  readonly keys: FuzzKeys;
  readonly ids: FuzzIds;
  readonly close: () => Promise<void>;
}

/**
 * A server on PostgreSQL with two tenants, a HubSpot sandbox on loopback whose contacts are
 * synced into tenant A's connection (so record, conflict and job procedures have real rows to
 * reach), an outbound webhook subscription, and a connection of tenant B's, whose id tenant A's
 * requests use as a foreign id.
 */
export const startFuzzFixture = async (env: Record<string, string> = {}): Promise<FuzzFixture> => {
  const sandbox = await serveHubSpotFake({ port: 0 });
  sandbox.fake.seedContacts(50);
  sandbox.fake.seedCompanies(5);
  const t = await startTestServer("postgres", env);
  const admin = t.client(t.adminKey);
  const a = await admin.tenants.create.mutate({ name: "Fuzz A" });
  const b = await admin.tenants.create.mutate({ name: "Fuzz B" });
  const keyA = (await admin.apiKeys.create.mutate({ tenantId: a.id, name: "a" })).key;
  const keyB = (await admin.apiKeys.create.mutate({ tenantId: b.id, name: "b" })).key;
  const config = { baseUrl: sandbox.url, accessToken: hubSpotFakeToken, webhooks: { clientSecret: "fuzz-secret" } };
  const mine = await t.client(keyA).connections.create.mutate({ connector: "hubspot", name: "crm", config });
  const theirs = await t.client(keyB).connections.create.mutate({ connector: "hubspot", name: "crm", config });
  const trigger = await t.client(keyA).sync.trigger.mutate({ connectionId: mine.id, entity: "contacts", mode: "full" });
  const jobId = "jobId" in trigger ? trigger.jobId : undefined;
  // Wait (bounded) for the full sync to store the sandbox's contacts.
  const deadline = Date.now() + 60_000;
  let externalIds: Array<string> = [];
  while (Date.now() < deadline) {
    const page = await t.client(keyA).records.list.query({ connectionId: mine.id, entity: "contacts", limit: 100 });
    externalIds = page.items.flatMap((r) => r.externalId ?? []);
    if (externalIds.length >= 50) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    t,
    keys: { tenant: keyA, otherTenant: keyB, admin: t.adminKey },
    ids: {
      connectionIds: [mine.id],
      foreignConnectionIds: [theirs.id],
      tenantIds: [a.id, b.id],
      entities: ["contacts", "companies", "nope"],
      externalIds: externalIds.length > 0 ? externalIds : ["1"],
      otherIds: jobId === undefined ? [mine.id] : [jobId, mine.id],
    },
    close: async () => {
      await t.close();
      await sandbox.close();
    },
  };
};
