import type { WriteResult } from "@tandem/connector-sdk";
import { callBatchWrite, makeStandaloneContext } from "@tandem/connector-sdk/runtime";
import {
  businessCentralEtag,
  businessCentralFakeApp,
  businessCentralFakeIds,
  businessCentralHandlers,
  createBusinessCentralFake,
  createManualClock,
} from "@tandem/testkit";
import { Effect, Schema } from "effect";
import { setupServer } from "msw/node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import erp, { BusinessCentralConfig, type Customer, type Item } from "../src/index.ts";

const baseUrl = "https://bc.batch.test";
const authorityUrl = "https://login.batch.test";
const clock = createManualClock(Date.UTC(2026, 6, 1));
const fake = createBusinessCentralFake({ baseUrl, authorityUrl, clock });
const server = setupServer(...businessCentralHandlers(fake));

beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
beforeEach(() => fake.reset());
afterAll(() => server.close());

const silent = { debug: () => {}, info: () => {}, warn: () => {} };
const ctx = makeStandaloneContext(
  erp,
  Schema.decodeUnknownSync(BusinessCentralConfig)({
    baseUrl,
    authorityUrl,
    ...businessCentralFakeIds,
    clientId: businessCentralFakeApp.clientId,
    clientSecret: businessCentralFakeApp.clientSecret,
  }),
  { http: { timeoutMs: 5_000 }, log: silent },
);
const { items, customers } = erp.entities;

const apiRoot = `${baseUrl}/v2.0/${businessCentralFakeIds.tenantId}/${businessCentralFakeIds.environment}/api/v2.0`;
const batchCalls = () => fake.requests().filter((r) => r.url === `${apiRoot}/$batch`);
const etagOf = (entitySet: "items" | "customers", id: string) =>
  businessCentralEtag(id, fake.store.get(entitySet, id)!.version);
const outcome = (result: WriteResult<unknown>) => (result.ok ? "ok" : result.error._tag);

const token = async () => {
  const response = await fetch(`${authorityUrl}/${businessCentralFakeIds.tenantId}/oauth2/v2.0/token`, {
    method: "POST",
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_id: businessCentralFakeApp.clientId,
      client_secret: businessCentralFakeApp.clientSecret,
      scope: "https://api.businesscentral.dynamics.com/.default",
    }),
  });
  return ((await response.json()) as { access_token: string }).access_token;
};

describe("the fake's $batch", () => {
  it("answers each operation as it would alone, in order and by id: a stale If-Match is 409, a missing one 400", async () => {
    const [a, b] = fake.seedItems(2);
    const staleB = businessCentralEtag(b!.id, b!.version);
    clock.advance(1_000);
    fake.store.update("items", b!.id, { unitPrice: 5 });
    const company = `companies(${businessCentralFakeIds.companyId})`;
    const response = await fetch(`${apiRoot}/$batch`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${await token()}`,
        "content-type": "application/json",
        accept: "application/json",
      },
      body: JSON.stringify({
        requests: [
          {
            id: "1",
            method: "PATCH",
            url: `${company}/items(${a!.id})`,
            headers: { "content-type": "application/json", "if-match": businessCentralEtag(a!.id, a!.version) },
            body: { displayName: "Batched" },
          },
          {
            id: "2",
            method: "PATCH",
            url: `${company}/items(${b!.id})`,
            headers: { "if-match": staleB },
            body: { unitPrice: 9 },
          },
          { id: "3", method: "DELETE", url: `${company}/items(${b!.id})` },
          { id: "4", method: "POST", url: `${company}/items`, body: { displayName: "New", type: "Service" } },
        ],
      }),
    });
    expect(response.status).toBe(200);
    const { responses } = (await response.json()) as {
      responses: Array<{ id: string; status: number; body?: { displayName?: string; error?: { code: string } } }>;
    };
    expect(responses.map((r) => [r.id, r.status])).toEqual([
      ["1", 200],
      ["2", 409],
      ["3", 400],
      ["4", 201],
    ]);
    expect(responses[0]!.body?.displayName).toBe("Batched");
    expect(responses[1]!.body?.error?.code).toBe("Request_EntityChanged");
    expect(responses[2]!.body?.error?.code).toBe("BadRequest_InvalidToken");
    expect(fake.store.get("items", b!.id)!.fields.unitPrice).toBe(5);
    expect(batchCalls()).toEqual([expect.objectContaining({ method: "POST", status: 200, operations: 4 })]);
  });

  it("refuses more than 100 operations, and transactional batches it does not serve", async () => {
    const send = async (requests: ReadonlyArray<unknown>, headers: Record<string, string> = {}) =>
      (
        await fetch(`${apiRoot}/$batch`, {
          method: "POST",
          headers: { authorization: `Bearer ${await token()}`, "content-type": "application/json", ...headers },
          body: JSON.stringify({ requests }),
        })
      ).status;
    const op = { id: "x", method: "GET", url: `companies(${businessCentralFakeIds.companyId})/items` };
    expect(await send(Array.from({ length: 101 }, (_, i) => ({ ...op, id: String(i) })))).toBe(400);
    expect(await send([op], { isolation: "snapshot" })).toBe(400);
    expect(await send([op])).toBe(200);
  });
});

describe("batch create", () => {
  it("creates 250 items in 3 $batch requests of at most 100 operations; each result is the entity with its etag", async () => {
    const inputs = Array.from({ length: 250 }, (_, i) => ({
      record: { displayName: `Batch item ${i}`, type: "Inventory" as const, unitPrice: i },
    }));
    const results = (await items.write!.batch!.create!(ctx, inputs)) as ReadonlyArray<WriteResult<Item>>;
    expect(batchCalls().map((r) => r.operations)).toEqual([100, 100, 50]);
    results.forEach((result, i) => {
      expect(result).toMatchObject({ ok: true, record: { displayName: `Batch item ${i}`, unitPrice: i } });
      if (result.ok) expect(result.record?.etag).toBe(etagOf("items", result.externalId));
    });
    expect(fake.records("items")).toHaveLength(250);
  });

  it("a refused operation fails alone with BC's message; the others are created", async () => {
    const results = (await items.write!.batch!.create!(ctx, [
      { record: { displayName: "Good" } },
      { record: { displayName: "Read-only", inventory: 5 } },
      { record: { displayName: "Also good" } },
    ])) as ReadonlyArray<WriteResult<Item>>;
    expect(results.map(outcome)).toEqual(["ok", "InvalidRecord", "ok"]);
    expect(!results[1]!.ok && results[1]!.error.message).toContain("'inventory' is read-only");
    expect(fake.records("items").map((r) => r.fields.displayName)).toEqual(["Good", "Also good"]);
  });
});

describe("batch update", () => {
  it("each operation carries its own If-Match: an entity changed since its etag is a version Conflict (409) and is not written", async () => {
    const seeded = fake.seedCustomers(3);
    const etags = seeded.map((c) => etagOf("customers", c.id));
    clock.advance(1_000);
    fake.store.update("customers", seeded[1]!.id, { phoneNumber: "+1-425-555-0101" });
    clock.advance(1_000);
    const results = (await customers.write!.batch!.update!(
      ctx,
      seeded.map((c, i) => ({ id: c.id, changes: { displayName: `Renamed ${i}` }, ifVersion: etags[i] })),
    )) as ReadonlyArray<WriteResult<Customer>>;
    expect(results.map(outcome)).toEqual(["ok", "Conflict", "ok"]);
    expect(results[1]).toMatchObject({ ok: false, error: { reason: "version", externalId: seeded[1]!.id } });
    expect(!results[1]!.ok && results[1]!.error.message).toContain("Request_EntityChanged");
    expect(fake.store.get("customers", seeded[1]!.id)!.fields.displayName).toBe(seeded[1]!.fields.displayName);
    expect(results[0]).toMatchObject({
      ok: true,
      record: { displayName: "Renamed 0", etag: etagOf("customers", seeded[0]!.id) },
    });
    expect(batchCalls()).toHaveLength(1);
  });

  it("without ifVersion, If-Match: * writes whatever the version; a deleted entity is NotFound, a key that is no GUID too", async () => {
    const [a, b] = fake.seedItems(2);
    fake.store.remove("items", b!.id);
    const results = (await items.write!.batch!.update!(ctx, [
      { id: a!.id, changes: { unitCost: 3 } },
      { id: b!.id, changes: { unitCost: 4 } },
      { id: "not-a-guid", changes: { unitCost: 5 } },
    ])) as ReadonlyArray<WriteResult<Item>>;
    expect(results.map(outcome)).toEqual(["ok", "NotFound", "NotFound"]);
    expect(fake.store.get("items", a!.id)!.fields.unitCost).toBe(3);
  });

  it("a single update with ifVersion sends it as If-Match, without a GET; stale is a version Conflict", async () => {
    const [item] = fake.seedItems(1);
    const etag = etagOf("items", item!.id);
    clock.advance(1_000);
    fake.store.update("items", item!.id, { unitPrice: 1 });
    const before = fake.requests().length;
    await expect(
      Promise.resolve(items.write!.update!(ctx, item!.id, { unitPrice: 2 }, { ifVersion: etag })),
    ).rejects.toMatchObject({ _tag: "Conflict", reason: "version" });
    expect(
      fake
        .requests()
        .slice(before)
        .map((r) => `${r.method} ${r.status}`),
    ).not.toContain("GET 200");
    await expect(
      Promise.resolve(items.write!.update!(ctx, item!.id, { unitPrice: 2 }, { ifVersion: etagOf("items", item!.id) })),
    ).resolves.toMatchObject({ unitPrice: 2 });
  });

  it("through callBatchWrite: the version of a written entity is its new etag", async () => {
    const [item] = fake.seedItems(1);
    const [result] = await Effect.runPromise(
      callBatchWrite(items, ctx, "update", [
        { id: item!.id, changes: { gtin: "0123" }, ifVersion: etagOf("items", item!.id) },
      ]),
    );
    expect(result).toMatchObject({ ok: true, version: etagOf("items", item!.id), record: { data: { gtin: "0123" } } });
  });
});

describe("batch delete", () => {
  it("deletes with If-Match; one already gone succeeds; a stale etag is a version Conflict and the entity stays", async () => {
    const [a, b, c] = fake.seedItems(3);
    const staleC = etagOf("items", c!.id);
    fake.store.remove("items", b!.id);
    clock.advance(1_000);
    fake.store.update("items", c!.id, { unitPrice: 77 });
    const results = (await items.write!.batch!.delete!(ctx, [
      { id: a!.id, ifVersion: etagOf("items", a!.id) },
      { id: b!.id },
      { id: c!.id, ifVersion: staleC },
    ])) as ReadonlyArray<WriteResult<Item>>;
    expect(results.map(outcome)).toEqual(["ok", "ok", "Conflict"]);
    expect(fake.records("items").map((r) => r.id)).toEqual([c!.id]);
  });
});
