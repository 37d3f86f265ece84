import type { WriteResult } from "@tandem/connector-sdk";
import { callBatchWrite, makeStandaloneContext } from "@tandem/connector-sdk/runtime";
import { createHubSpotFake, createManualClock, hubSpotFakeToken, hubSpotHandlers } from "@tandem/testkit";
import { Effect, Schema } from "effect";
import { setupServer } from "msw/node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import hubspot, { type Contact, HubSpotConfig } from "../src/index.ts";

const baseUrl = "https://hubspot.batch.test";
const clock = createManualClock(Date.UTC(2026, 6, 1));
const fake = createHubSpotFake({ baseUrl, clock });
const server = setupServer(...hubSpotHandlers(fake));

beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
beforeEach(() => fake.reset());
afterAll(() => {
  fake.close();
  server.close();
});

const silent = { debug: () => {}, info: () => {}, warn: () => {} };
const ctx = makeStandaloneContext(
  hubspot,
  Schema.decodeUnknownSync(HubSpotConfig)({ baseUrl, accessToken: hubSpotFakeToken }),
  { http: { timeoutMs: 5_000 }, log: silent },
);
const { contacts, companies } = hubspot.entities;
const batch = contacts.write!.batch!;

/** Requests to one batch endpoint, by status. */
const batchCalls = (operation: string) =>
  fake
    .requests()
    .filter((r) => r.method === "POST" && r.path.endsWith(`/batch/${operation}`))
    .map((r) => r.status);

const outcome = (result: WriteResult<Contact>) => (result.ok ? "ok" : result.error._tag);

describe("batch create", () => {
  it("creates 250 contacts in 3 requests of at most 100, each result with its record, in the inputs' order", async () => {
    const inputs = Array.from({ length: 250 }, (_, i) => ({
      record: { email: `batch${i}@example.com`, firstName: `First ${i}` },
    }));
    const results = (await batch.create!(ctx, inputs)) as ReadonlyArray<WriteResult<Contact>>;
    expect(batchCalls("create")).toEqual([201, 201, 201]);
    expect(results).toHaveLength(250);
    results.forEach((result, i) => {
      expect(result).toMatchObject({ ok: true, record: { email: `batch${i}@example.com`, firstName: `First ${i}` } });
      expect(result.ok && fake.store.get("contacts", result.externalId)?.properties.email).toBe(
        `batch${i}@example.com`,
      );
    });
    expect(fake.live("contacts")).toHaveLength(250);
  });

  it("a taken email fails the whole request with one 409: the input it names fails alone, the others are created", async () => {
    const [existing] = fake.seedContacts(1);
    const inputs = [
      { record: { email: "one@example.com" } },
      { record: { email: "two@example.com" } },
      { record: { email: existing!.properties.email!.toUpperCase(), firstName: "Dup" } },
      { record: { email: "three@example.com" } },
    ];
    const results = (await batch.create!(ctx, inputs)) as ReadonlyArray<WriteResult<Contact>>;
    expect(results.map(outcome)).toEqual(["ok", "ok", "Conflict", "ok"]);
    expect(results[2]).toMatchObject({
      ok: false,
      error: { _tag: "Conflict", reason: "duplicate", externalId: existing!.id },
    });
    expect(!results[2]!.ok && results[2]!.error.message).toContain(
      `Contact already exists. Existing ID: ${existing!.id}`,
    );
    // The 409, then the set-aside: one GET of the existing contact's email and one create of the rest.
    expect(batchCalls("create")).toEqual([409, 201]);
    expect(fake.requests().filter((r) => r.method === "GET")).toHaveLength(1);
    expect(
      fake
        .live("contacts")
        .map((o) => o.properties.email)
        .sort(),
    ).toEqual([existing!.properties.email, "one@example.com", "three@example.com", "two@example.com"].sort());
  });

  it("several taken emails in one request: each fails alone, every other input is created once", async () => {
    const taken = fake.seedContacts(3);
    const inputs = Array.from({ length: 20 }, (_, i) => ({
      record: { email: i % 7 === 3 ? taken[(i - 3) / 7]!.properties.email! : `fresh${i}@example.com` },
    }));
    const results = (await batch.create!(ctx, inputs)) as ReadonlyArray<WriteResult<Contact>>;
    expect(results.map((r, i) => (r.ok ? "ok" : `${i}:${r.error._tag}`)).filter((s) => s !== "ok")).toEqual([
      "3:Conflict",
      "10:Conflict",
      "17:Conflict",
    ]);
    expect(fake.live("contacts")).toHaveLength(3 + 17);
    expect(new Set(fake.live("contacts").map((o) => o.properties.email)).size).toBe(20);
  });

  it("a refusal that names no input (a bad value: one 400) is halved until the bad inputs fail alone", async () => {
    const inputs = Array.from({ length: 8 }, (_, i) => ({
      record: { email: i === 2 || i === 5 ? `not an email ${i}` : `good${i}@example.com` },
    }));
    const results = (await batch.create!(ctx, inputs)) as ReadonlyArray<WriteResult<Contact>>;
    expect(results.map(outcome)).toEqual(["ok", "ok", "InvalidRecord", "ok", "ok", "InvalidRecord", "ok", "ok"]);
    expect(!results[2]!.ok && results[2]!.error.message).toContain("HubSpot 400 VALIDATION_ERROR");
    expect(!results[2]!.ok && results[2]!.error.message).toContain("not an email 2");
    expect(fake.live("contacts")).toHaveLength(6);
    // 1 + halving: at most 2 requests per level for each bad input.
    expect(batchCalls("create").length).toBeLessThanOrEqual(1 + 2 * 2 * 3);
  });

  it("two inputs with the same new email: one is created, the other fails as a Conflict", async () => {
    const results = (await batch.create!(ctx, [
      { record: { email: "twin@example.com", firstName: "A" } },
      { record: { email: "other@example.com" } },
      { record: { email: "twin@example.com", firstName: "B" } },
    ])) as ReadonlyArray<WriteResult<Contact>>;
    expect(results.map(outcome)).toEqual(["ok", "ok", "Conflict"]);
    expect(fake.live("contacts")).toHaveLength(2);
  });

  it("a 429 after the first request: what was created stays a success, the rest fail RateLimited without being sent", async () => {
    const inputs = Array.from({ length: 150 }, (_, i) => ({ record: { email: `limited${i}@example.com` } }));
    const first = fake.handle;
    let calls = 0;
    server.use(
      // The second batch request meets a 429.
      ...hubSpotHandlers({
        ...fake,
        handle: async (request) => {
          if (request.url.pathname.endsWith("/batch/create") && ++calls === 2) {
            fake.failNext({ kind: "rateLimit", retryAfterSeconds: 3 });
          }
          return first(request);
        },
      }),
    );
    const results = (await batch.create!(ctx, inputs)) as ReadonlyArray<WriteResult<Contact>>;
    server.resetHandlers();
    expect(results.slice(0, 100).every((r) => r.ok)).toBe(true);
    expect(results.slice(100).map(outcome)).toEqual(Array(50).fill("RateLimited"));
    expect(fake.live("contacts")).toHaveLength(100);
  });

  it("companies (no unique property) are created in batches too", async () => {
    const results = await companies.write!.batch!.create!(ctx, [
      { record: { name: "Acme" } },
      { record: { name: "Initech" } },
    ]);
    expect((results as ReadonlyArray<WriteResult<unknown>>).map((r) => r.ok)).toEqual([true, true]);
    expect(fake.live("companies").map((o) => o.properties.name)).toEqual(["Acme", "Initech"]);
  });
});

describe("batch update", () => {
  it("updates 150 contacts with one read and one update request per 100; each result is the whole record", async () => {
    const seeded = fake.seedContacts(150);
    clock.advance(60_000);
    const results = (await batch.update!(
      ctx,
      seeded.map((o, i) => ({ id: o.id, changes: { phone: `+1000${i}` } })),
    )) as ReadonlyArray<WriteResult<Contact>>;
    expect(batchCalls("read")).toEqual([200, 200]);
    expect(batchCalls("update")).toEqual([200, 200]);
    results.forEach((result, i) => {
      // Fields not written come from the read before: the record is whole, not just the phone.
      expect(result).toMatchObject({
        ok: true,
        externalId: seeded[i]!.id,
        record: { phone: `+1000${i}`, email: seeded[i]!.properties.email, lastName: seeded[i]!.properties.lastname },
      });
      // In its encoded form, as reads yield it (the engine decodes it: see the callBatchWrite test).
      expect(result.ok && result.record).toMatchObject({ updatedAt: new Date(clock.now()).toISOString() });
    });
  });

  it("partial failures: an archived contact is NotFound, a refused value InvalidRecord with HubSpot's message; the rest is written", async () => {
    const [a, b, c, d] = fake.seedContacts(4);
    fake.store.archive("contacts", b!.id);
    const results = (await batch.update!(ctx, [
      { id: a!.id, changes: { firstName: "A" } },
      { id: b!.id, changes: { firstName: "B" } },
      { id: c!.id, changes: { email: "broken" } },
      { id: d!.id, changes: { firstName: "D" } },
    ])) as ReadonlyArray<WriteResult<Contact>>;
    expect(results.map(outcome)).toEqual(["ok", "NotFound", "InvalidRecord", "ok"]);
    expect(!results[2]!.ok && results[2]!.error.message).toContain("Email address broken is invalid");
    expect(fake.store.get("contacts", a!.id)?.properties.firstname).toBe("A");
    expect(fake.store.get("contacts", d!.id)?.properties.firstname).toBe("D");
    expect(fake.store.get("contacts", c!.id)?.properties.email).toBe(c!.properties.email);
  });

  it("conditional: a record moved past ifVersion fails as a version Conflict and is not written; a current one is", async () => {
    const [fresh, stale] = fake.seedContacts(2);
    const versions = [new Date(fresh!.updatedAt).toISOString(), new Date(stale!.updatedAt).toISOString()];
    clock.advance(5_000);
    fake.store.update("contacts", stale!.id, { jobtitle: "Changed remotely" });
    const results = (await batch.update!(ctx, [
      { id: fresh!.id, changes: { firstName: "Fresh" }, ifVersion: versions[0] },
      { id: stale!.id, changes: { firstName: "Stale" }, ifVersion: versions[1] },
    ])) as ReadonlyArray<WriteResult<Contact>>;
    expect(results.map(outcome)).toEqual(["ok", "Conflict"]);
    expect(results[1]).toMatchObject({ ok: false, error: { reason: "version", externalId: stale!.id } });
    expect(fake.store.get("contacts", stale!.id)?.properties.firstname).toBe(stale!.properties.firstname);
    expect(fake.store.get("contacts", fresh!.id)?.properties.firstname).toBe("Fresh");
  });

  it("a single update with a stale ifVersion throws the version Conflict", async () => {
    const [contact] = fake.seedContacts(1);
    const version = new Date(contact!.updatedAt).toISOString();
    clock.advance(1_000);
    fake.store.update("contacts", contact!.id, { phone: "+1999" });
    await expect(
      Promise.resolve(contacts.write!.update!(ctx, contact!.id, { firstName: "Late" }, { ifVersion: version })),
    ).rejects.toMatchObject({ _tag: "Conflict", reason: "version" });
    const current = new Date(fake.store.get("contacts", contact!.id)!.updatedAt).toISOString();
    await expect(
      Promise.resolve(contacts.write!.update!(ctx, contact!.id, { firstName: "OnTime" }, { ifVersion: current })),
    ).resolves.toMatchObject({ firstName: "OnTime", phone: "+1999" });
  });

  it("through callBatchWrite (as the engine calls it): records decoded, versions for the next write", async () => {
    const [contact] = fake.seedContacts(1);
    clock.advance(1_000);
    const [result] = await Effect.runPromise(
      callBatchWrite(contacts, ctx, "update", [{ id: contact!.id, changes: { lastName: "Engine" } }]),
    );
    expect(result).toMatchObject({
      ok: true,
      externalId: contact!.id,
      version: new Date(clock.now()).toISOString(),
      record: { data: { lastName: "Engine", email: contact!.properties.email } },
    });
  });
});

describe("batch archive", () => {
  it("archives in one request; an id already gone succeeds; a stale ifVersion is a version Conflict", async () => {
    const [a, b, c, d] = fake.seedContacts(4);
    fake.store.archive("contacts", b!.id);
    const staleVersion = new Date(d!.updatedAt).toISOString();
    clock.advance(1_000);
    fake.store.update("contacts", d!.id, { phone: "+1777" });
    const results = (await batch.delete!(ctx, [
      { id: a!.id },
      { id: b!.id },
      { id: c!.id, ifVersion: new Date(c!.updatedAt).toISOString() },
      { id: d!.id, ifVersion: staleVersion },
    ])) as ReadonlyArray<WriteResult<Contact>>;
    expect(results.map(outcome)).toEqual(["ok", "ok", "ok", "Conflict"]);
    expect(batchCalls("archive")).toEqual([204]);
    expect([a, b, c, d].map((o) => fake.store.get("contacts", o!.id)?.archived)).toEqual([true, true, true, false]);
  });

  it("250 deletes are 3 archive requests", async () => {
    const seeded = fake.seedContacts(250);
    const results = await batch.delete!(
      ctx,
      seeded.map((o) => ({ id: o.id })),
    );
    expect((results as ReadonlyArray<WriteResult<Contact>>).every((r) => r.ok)).toBe(true);
    expect(batchCalls("archive")).toEqual([204, 204, 204]);
    expect(fake.live("contacts")).toHaveLength(0);
  });
});
