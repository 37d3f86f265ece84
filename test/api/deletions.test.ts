import { dialects, hubSpotFakeToken, type ServedHubSpotFake, serveHubSpotFake } from "@tandem/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer, trpcCode } from "../support/server.ts";

/*
 * The mass-deletion review queue over the API, on a real server syncing from the HubSpot fake
 * over HTTP: a delta's burst of deletions is held (TANDEM_MASS_DELETE_MAX=3), the alert fires,
 * and `deletions.quarantined.*` lists, approves and rejects, scoped to the tenant.
 */

for (const dialect of dialects) {
  describe(`the deletions review queue over the API on ${dialect}`, () => {
    let t: TestServer;
    let fake: ServedHubSpotFake;
    let keyA: string;
    let keyB: string;
    let connectionId: string;

    beforeAll(async () => {
      fake = await serveHubSpotFake({ port: 0 });
      t = await startTestServer(dialect, { TANDEM_MASS_DELETE_MAX: "3", TANDEM_ALERTS_CRON: "*/2 * * * * *" });
      const admin = t.client(t.adminKey);
      const a = await admin.tenants.create.mutate({ name: "A" });
      const b = await admin.tenants.create.mutate({ name: "B" });
      keyA = (await admin.apiKeys.create.mutate({ tenantId: a.id, name: "a" })).key;
      keyB = (await admin.apiKeys.create.mutate({ tenantId: b.id, name: "b" })).key;
      const connection = await t.client(keyA).connections.create.mutate({
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

    /** Triggers a sync of contacts and waits for its job to finish. */
    const sync = async (mode: "full" | "delta") => {
      const a = t.client(keyA);
      const { jobId } = await a.sync.trigger.mutate({ connectionId, entity: "contacts", mode });
      await expect
        .poll(async () => (await a.jobs.get.query({ id: jobId })).job.status, { timeout: 60_000 })
        .toBe("completed");
      return (await a.jobs.get.query({ id: jobId })).runs[0]!;
    };

    it("lists held deletions, approves and rejects them one by one or all at once; the alert follows the queue", async () => {
      const a = t.client(keyA);
      const b = t.client(keyB);
      const seeded = fake.fake.seedContacts(20);
      expect(await sync("full")).toMatchObject({ status: "succeeded", created: 20 });

      const gone = seeded.slice(0, 6).map((o) => o.id);
      for (const id of gone) fake.fake.store.archive("contacts", id);
      const run = await sync("delta");
      expect(run).toMatchObject({ status: "succeeded", deleted: 0 });
      expect(run.errorMessage).toBe("quarantined: 6 deletions held for review by the mass-deletion guard");

      const pending = (await a.deletions.quarantined.list.query({ status: "pending", connectionId })).items;
      expect(pending.map((d) => d.externalId).sort()).toEqual([...gone].sort());
      expect(pending[0]).toMatchObject({ entity: "contacts", source: "delta", guard: { rule: "max-deletions" } });
      expect(await a.deletions.quarantined.get.query({ id: pending[0]!.id })).toEqual(pending[0]);
      // The records are still there.
      const record = await a.records.get.query({ connectionId, entity: "contacts", externalId: gone[0]! });
      expect(record.deletedAt).toBeNull();
      await expect
        .poll(async () => (await a.alerts.list.query({ status: "firing" })).items.map((x) => x.kind), {
          timeout: 30_000,
        })
        .toContain("mass_deletion");

      // Another tenant sees nothing and settles nothing.
      expect((await b.deletions.quarantined.list.query({})).items).toEqual([]);
      expect(await trpcCode(b.deletions.quarantined.get.query({ id: pending[0]!.id }))).toBe("NOT_FOUND");
      expect(await trpcCode(b.deletions.quarantined.approve.mutate({ id: pending[0]!.id }))).toBe("NOT_FOUND");
      expect(await trpcCode(b.deletions.quarantined.approveAll.mutate({ connectionId, entity: "contacts" }))).toBe(
        "NOT_FOUND",
      );
      // Bad input is a field error.
      expect(await trpcCode(a.deletions.quarantined.approve.mutate({ id: "not-a-uuid" }))).toBe("BAD_REQUEST");
      expect(
        await trpcCode(a.deletions.quarantined.reject.mutate({ id: pending[1]!.id, reason: "x".repeat(2_001) })),
      ).toBe("BAD_REQUEST");

      const approved = await a.deletions.quarantined.approve.mutate({ id: pending[0]!.id });
      expect(approved).toMatchObject({ status: "approved", recordDeleted: true });
      expect(approved.resolvedBy).toMatch(/^api-key:/);
      expect(await trpcCode(a.deletions.quarantined.approve.mutate({ id: pending[0]!.id }))).toBe(
        "PRECONDITION_FAILED",
      );
      const deleted = await a.records.get.query({ connectionId, entity: "contacts", externalId: gone[0]! });
      expect(deleted.deletedAt).not.toBeNull();

      const rejected = await a.deletions.quarantined.reject.mutate({ id: pending[1]!.id, reason: "still a customer" });
      expect(rejected).toMatchObject({ status: "rejected", reason: "still a customer", keepsRecord: true });

      expect(await a.deletions.quarantined.approveAll.mutate({ connectionId, entity: "contacts" })).toEqual({
        approved: 4,
        deleted: 4,
      });
      expect(await a.deletions.quarantined.rejectAll.mutate({ connectionId, entity: "contacts" })).toEqual({
        rejected: 0,
      });
      expect((await a.deletions.quarantined.list.query({ status: "pending" })).items).toEqual([]);
      const all = (await a.deletions.quarantined.list.query({ connectionId, limit: 2 })).items;
      expect(all).toHaveLength(2);
      await expect
        .poll(async () => (await a.alerts.list.query({ status: "firing" })).items.map((x) => x.kind), {
          timeout: 30_000,
        })
        .not.toContain("mass_deletion");
      const kept = await a.records.get.query({ connectionId, entity: "contacts", externalId: gone[1]! });
      expect(kept.deletedAt).toBeNull();

      const doc = (await (await fetch(`${t.server.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
      expect(Object.keys(doc.paths)).toEqual(
        expect.arrayContaining([
          "/trpc/deletions.quarantined.list",
          "/trpc/deletions.quarantined.approve",
          "/trpc/deletions.quarantined.approveAll",
          "/trpc/deletions.quarantined.reject",
          "/trpc/deletions.quarantined.rejectAll",
        ]),
      );
    }, 120_000);
  });
}
