import erp, { BusinessCentralConfig, type Item } from "@tandem/connector-erp";
import type { WriteResult } from "@tandem/connector-sdk";
import { makeStandaloneContext } from "@tandem/connector-sdk/runtime";
import { makeLoopbackEgressPolicy } from "@tandem/testkit";
import { Schema } from "effect";
import { setupServer } from "msw/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { VendorSession, VendorTransport } from "../TwoWayVendor.ts";
import { businessCentralVendor as vendor } from "./businessCentral.ts";

/*
 * The Business Central matrix adapter against the ERP connector itself: what a user does through
 * the adapter is what the connector reads, what the connector writes is what the adapter reads
 * and counts (a `$batch` one write with several ids), and the adapter's notifications are ones
 * the connector verifies and parses. Over MSW and over loopback.
 */

const silent = { debug: () => {}, info: () => {}, warn: () => {} };
const items = erp.entities.items;
const contextFor = (config: unknown, transport: VendorTransport) =>
  makeStandaloneContext(erp, Schema.decodeUnknownSync(BusinessCentralConfig)(config), {
    http: { timeoutMs: 5_000, ...(transport === "loopback" ? { egress: makeLoopbackEgressPolicy() } : {}) },
    log: silent,
  });
const ok = (result: WriteResult<Item>) => {
  if (!result.ok) throw new Error(`refused: ${result.error.message}`);
  return result;
};

for (const transport of ["msw", "loopback"] as const satisfies ReadonlyArray<VendorTransport>) {
  describe(`the Business Central matrix adapter over ${transport}`, () => {
    let v: VendorSession;
    let msw: ReturnType<typeof setupServer> | undefined;
    let ctx: ReturnType<typeof contextFor>;

    beforeAll(async () => {
      v = await vendor.start(transport);
      if (v.handlers.length > 0) {
        msw = setupServer(...v.handlers);
        msw.listen({ onUnhandledFrame: "error" });
      }
      ctx = contextFor(v.config, transport);
    });
    afterAll(async () => {
      msw?.close();
      await v?.close();
    });

    it("a user's create, edit and delete are what the connector reads; the user's changes are no writes", async () => {
      v.reset();
      const sample = vendor.sample(1);
      const id = await v.create(sample);
      const read = (await items.get!(ctx, id)) as Item;
      expect(read).toMatchObject({ ...sample, id, gtin: null });
      expect(v.read(id)).toMatchObject({ ...sample, gtin: null, inventory: 0 });
      await v.edit(id, { displayName2: "Edited by a user", gtin: null });
      const edited = (await items.get!(ctx, id)) as Item;
      expect(edited.displayName2).toBe("Edited by a user");
      expect(edited.updatedAt.getTime()).toBeGreaterThan(read.updatedAt.getTime());
      expect(edited.etag).not.toBe(read.etag);
      expect(v.liveIds()).toEqual([id]);
      await v.remove(id);
      expect(v.read(id)).toBeUndefined();
      expect(v.liveIds()).toEqual([]);
      await expect(Promise.resolve(items.get!(ctx, id))).resolves.toBeNull();
      expect(v.writes()).toEqual([]);
    });

    it("the connector's writes are counted per request, a $batch as one write with its ids", async () => {
      v.reset();
      const [x, y] = [await v.create(vendor.sample(2)), await v.create(vendor.sample(3))];
      await items.write!.create!(ctx, vendor.sample(4) as Partial<Item>);
      const batch = (await items.write!.batch!.create!(ctx, [
        { record: vendor.sample(5) as Partial<Item> },
        { record: vendor.sample(6) as Partial<Item> },
      ])) as ReadonlyArray<WriteResult<Item>>;
      const newIds = batch.map((r) => ok(r).externalId);
      await items.write!.batch!.update!(ctx, [
        { id: x, changes: { displayName: "Pushed x" } },
        { id: y, changes: { displayName: "Pushed y" } },
      ]);
      await items.write!.update!(ctx, x, { displayName2: "Pushed alone" });
      await items.write!.batch!.delete!(ctx, [{ id: newIds[0]! }]);
      await items.write!.delete!(ctx, y);

      const writes = v.writes();
      expect(writes).toHaveLength(6);
      expect(writes[0]!.kind).toBe("create");
      expect(writes.slice(1)).toEqual([
        { kind: "create", ids: newIds },
        { kind: "update", ids: [x, y] },
        { kind: "update", ids: [x] },
        { kind: "delete", ids: [newIds[0]] },
        { kind: "delete", ids: [y] },
      ]);
      expect(v.read(writes[0]!.ids[0]!)).toMatchObject(vendor.sample(4));
      expect(v.read(x)).toMatchObject({ displayName: "Pushed x", displayName2: "Pushed alone" });
      expect([...v.liveIds()].sort()).toEqual([x, writes[0]!.ids[0]!, newIds[1]!].sort());
    });

    it("refusedCreate: BC refuses that operation of a $batch with its message, the others are created", async () => {
      v.reset();
      const refused = await vendor.refusedCreate(v);
      const results = (await items.write!.batch!.create!(ctx, [
        { record: vendor.sample(7) as Partial<Item> },
        { record: refused.fields as Partial<Item> },
      ])) as ReadonlyArray<WriteResult<Item>>;
      expect(results[0]!.ok).toBe(true);
      expect(results[1]!.ok).toBe(false);
      expect(!results[1]!.ok && results[1]!.error.message).toMatch(refused.message);
      expect(v.writes()).toEqual([{ kind: "create", ids: [results[0]!.ok && results[0]!.externalId] }]);
    });

    it("notifications verify with the connection's client state and parse to the change, in the order built", async () => {
      v.reset();
      const id = await v.create(vendor.sample(8));
      const url = "https://tandem.test/webhooks/erp/conn";
      await v.edit(id, { displayName: "First" });
      const first = v.notification(id, "change", url);
      await v.edit(id, { displayName: "Second" });
      const second = v.notification(id, "change", url);
      await v.remove(id);
      const deletion = v.notification(id, "delete", url);
      const now = new Date();
      const parse = (n: typeof first) => {
        const request = { method: n.method, url, headers: new Headers(n.headers), rawBody: n.body };
        expect(erp.webhooks!.verify!({ config: ctx.config, now }, request)).toBe(true);
        return erp.webhooks!.parse(request);
      };
      const events = [first, second, deletion].map(parse).map((e) => e[0]!);
      expect(events.map((e) => [e.entity, e.externalId, e.kind])).toEqual([
        ["items", id, "updated"],
        ["items", id, "updated"],
        ["items", id, "deleted"],
      ]);
      expect(new Set(events.map((e) => e.eventId)).size).toBe(3);
      expect(events[0]!.occurredAt.getTime()).toBeLessThan(events[1]!.occurredAt.getTime());
      expect(events[1]!.occurredAt.getTime()).toBeLessThan(events[2]!.occurredAt.getTime());
      // The same change notified twice is one event (a delivery retried).
      expect(parse(v.notification(id, "delete", url))[0]!.eventId).toBe(events[2]!.eventId);
    });
  });
}
