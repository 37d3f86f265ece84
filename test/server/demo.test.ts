import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDemo } from "@tandem/demo";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

/**
 * `pnpm start`'s demo: three sandboxes on loopback and a tenant with a connection to each, whose
 * syncs start at once. Watched through the API with the demo tenant's key, as the README says.
 */
describe("the demo", () => {
  let t: TestServer;
  let demo: Awaited<ReturnType<typeof startDemo>>;
  const dataDir = mkdtempSync(join(tmpdir(), "tandem-demo-test-"));

  beforeAll(async () => {
    t = await startTestServer("pglite");
    demo = await startDemo(t.server, dataDir);
  }, 120_000);
  afterAll(async () => {
    await demo?.close();
    await t?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("fully syncs every entity of the HubSpot, Salesforce and Business Central sandboxes", async () => {
    const { state } = demo;
    const client = t.client(state.apiKey);
    const expected = {
      [state.connectionId]: ["companies", "contacts"],
      [state.salesforceConnectionId!]: ["accounts", "contacts"],
      [state.erpConnectionId!]: ["customers", "items"],
    };
    for (const [connectionId, entities] of Object.entries(expected)) {
      await expect
        .poll(
          async () => {
            const status = await client.sync.status.query({ connectionId });
            return status.entities
              .filter((e) => e.lastRuns.full?.status === "succeeded")
              .map((e) => e.entity)
              .sort();
          },
          { timeout: 90_000, interval: 500 },
        )
        .toEqual(entities);
    }
    // Accounts and customers do not churn in the sandbox: every seeded one is stored.
    const count = async (connectionId: string, entity: string) => {
      let total = 0;
      let cursor: string | undefined;
      for (;;) {
        const page = await client.records.list.query({
          connectionId,
          entity,
          limit: 100,
          ...(cursor ? { cursor } : {}),
        });
        total += page.items.length;
        cursor = page.cursor;
        if (!page.hasMore) return total;
      }
    };
    expect(await count(state.salesforceConnectionId!, "accounts")).toBe(60);
    expect(await count(state.erpConnectionId!, "customers")).toBe(80);
    // The key is kept for the next start, readable by its owner only.
    expect(JSON.parse(readFileSync(join(dataDir, "demo.json"), "utf8"))).toEqual(state);
    expect(statSync(join(dataDir, "demo.json")).mode & 0o777).toBe(0o600);
  });

  it("a restart keeps the tenant and its connections, points them at the new sandboxes and runs deltas", async () => {
    const before = demo.state;
    const client = t.client(before.apiKey);
    const connectionIds = [before.connectionId, before.salesforceConnectionId!, before.erpConnectionId!];
    /** Each entity's last delta run, by connection and entity. */
    const lastDeltas = async () => {
      const runs = new Map<string, { readonly id: string; readonly status: string } | null>();
      for (const connectionId of connectionIds) {
        for (const e of (await client.sync.status.query({ connectionId })).entities) {
          runs.set(`${connectionId}/${e.entity}`, e.lastRuns.delta);
        }
      }
      return runs;
    };
    const earlier = await lastDeltas();
    await demo.close();
    demo = await startDemo(t.server, dataDir);
    expect(demo.state).toEqual(before);
    await expect
      .poll(
        async () =>
          [...(await lastDeltas())].filter(
            ([key, run]) => run !== null && run.status === "succeeded" && run.id !== earlier.get(key)?.id,
          ).length,
        { timeout: 60_000, interval: 500 },
      )
      .toBe(6);
  });
});
