import type { WriteResult } from "@tandem/connector-sdk";
import { callBatchWrite, makeStandaloneContext } from "@tandem/connector-sdk/runtime";
import { createManualClock, createSalesforceFake, salesforceFakeOAuthApp, salesforceHandlers } from "@tandem/testkit";
import { Effect, Schema } from "effect";
import { setupServer } from "msw/node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import salesforce, { type Contact, SalesforceConfig } from "../src/index.ts";

const instanceUrl = "https://batch.my.salesforce.test";
const clock = createManualClock(Date.UTC(2026, 6, 1));
const fake = createSalesforceFake({ instanceUrl, clock });
const server = setupServer(...salesforceHandlers(fake));

beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
beforeEach(() => fake.reset());
afterAll(() => {
  fake.close();
  server.close();
});

const silent = { debug: () => {}, info: () => {}, warn: () => {} };
const ctx = makeStandaloneContext(
  salesforce,
  Schema.decodeUnknownSync(SalesforceConfig)({
    instanceUrl,
    clientId: salesforceFakeOAuthApp.clientId,
    clientSecret: salesforceFakeOAuthApp.clientSecret,
    refreshToken: salesforceFakeOAuthApp.refreshToken,
  }),
  { http: { timeoutMs: 5_000 }, log: silent },
);
const { contacts, accounts } = salesforce.entities;
const batch = contacts.write!.batch!;

/** API calls to a resource (token requests excluded), by method. */
const calls = (method: string, path: string) =>
  fake.requests().filter((r) => r.method === method && r.path.split("?")[0] === `/services/data/v60.0${path}`).length;

const outcome = (result: WriteResult<unknown>) => (result.ok ? "ok" : result.error._tag);
const versionOf = (id: string) => new Date(fake.store.get("Contact", id)!.LastModifiedDate).toISOString();

describe("batch create", () => {
  it("creates 450 contacts in 3 collection requests of at most 200; each result is the record Salesforce has", async () => {
    const inputs = Array.from({ length: 450 }, (_, i) => ({
      record: { lastName: `Batch ${i}`, email: `b${i}@example.com` },
    }));
    const results = (await batch.create!(ctx, inputs)) as ReadonlyArray<WriteResult<Contact>>;
    expect(calls("POST", "/composite/sobjects")).toBe(3);
    expect(calls("GET", "/composite/sobjects/Contact")).toBe(3);
    expect(results).toHaveLength(450);
    results.forEach((result, i) => {
      expect(result).toMatchObject({ ok: true, record: { lastName: `Batch ${i}`, email: `b${i}@example.com` } });
      expect(result.ok && fake.store.get("Contact", result.externalId)?.fields.LastName).toBe(`Batch ${i}`);
    });
  });

  it("per-record failures (allOrNone: false): the refused records fail with Salesforce's message, the others are created", async () => {
    fake.store.duplicateRuleOnEmail = true;
    const [existing] = fake.seedContacts(1);
    const results = (await batch.create!(ctx, [
      { record: { lastName: "Good" } },
      { record: { firstName: "No last name" } },
      { record: { lastName: "Dup", email: existing!.fields.Email as string } },
      { record: { lastName: "Bad email", email: "nope" } },
      { record: { lastName: "Also good" } },
    ])) as ReadonlyArray<WriteResult<Contact>>;
    expect(results.map(outcome)).toEqual(["ok", "InvalidRecord", "Conflict", "InvalidRecord", "ok"]);
    expect(!results[1]!.ok && results[1]!.error.message).toContain("REQUIRED_FIELD_MISSING");
    expect(!results[1]!.ok && results[1]!.error.message).toContain("Required fields are missing: [LastName]");
    expect(results[2]).toMatchObject({ ok: false, error: { reason: "duplicate", externalId: existing!.Id } });
    expect(fake.live("Contact")).toHaveLength(3);
  });
});

describe("batch update", () => {
  it("unconditional updates go over collections, 200 a request, with the whole record after", async () => {
    const seeded = fake.seedContacts(250);
    clock.advance(60_000);
    const results = (await batch.update!(
      ctx,
      seeded.map((r, i) => ({ id: r.Id, changes: { phone: `+1 555 ${i}` } })),
    )) as ReadonlyArray<WriteResult<Contact>>;
    expect(calls("PATCH", "/composite/sobjects")).toBe(2);
    expect(calls("POST", "/composite")).toBe(0);
    results.forEach((result, i) => {
      expect(result).toMatchObject({
        ok: true,
        externalId: seeded[i]!.Id,
        record: { phone: `+1 555 ${i}`, lastName: seeded[i]!.fields.LastName },
      });
      // In its encoded form, as reads yield it (the engine decodes it in one pass).
      expect(result.ok && result.record).toMatchObject({ lastModifiedAt: new Date(clock.now()).toISOString() });
    });
  });

  it("conditional updates go over Composite with If-Unmodified-Since, 25 a request: a record changed since is a version Conflict (412) and is not written", async () => {
    const seeded = fake.seedContacts(30);
    const versions = seeded.map((r) => versionOf(r.Id));
    clock.advance(5_000);
    fake.store.update("Contact", seeded[7]!.Id, { Phone: "+1 555 0007" });
    clock.advance(5_000);
    const results = (await batch.update!(
      ctx,
      seeded.map((r, i) => ({ id: r.Id, changes: { firstName: `Cond ${i}` }, ifVersion: versions[i] })),
    )) as ReadonlyArray<WriteResult<Contact>>;
    expect(calls("POST", "/composite")).toBe(2);
    expect(results.map(outcome).filter((o) => o !== "ok")).toEqual(["Conflict"]);
    expect(results[7]).toMatchObject({
      ok: false,
      error: { _tag: "Conflict", reason: "version", externalId: seeded[7]!.Id },
    });
    expect(!results[7]!.ok && results[7]!.error.message).toContain("Salesforce 412");
    expect(fake.store.get("Contact", seeded[7]!.Id)!.fields.FirstName).toBe(seeded[7]!.fields.FirstName);
    expect(results[8]).toMatchObject({ ok: true, record: { firstName: "Cond 8" } });
  });

  it("mixed: conditional and unconditional inputs keep their order; a deleted record is NotFound", async () => {
    const [a, b, c] = fake.seedContacts(3);
    fake.store.delete("Contact", b!.Id);
    const results = (await batch.update!(ctx, [
      { id: a!.Id, changes: { lastName: "A" }, ifVersion: versionOf(a!.Id) },
      { id: b!.Id, changes: { lastName: "B" } },
      { id: c!.Id, changes: { lastName: "C" } },
    ])) as ReadonlyArray<WriteResult<Contact>>;
    expect(results.map(outcome)).toEqual(["ok", "NotFound", "ok"]);
    expect(results.map((r) => r.ok && r.record?.lastName)).toEqual(["A", false, "C"]);
  });

  it("a single update with a stale ifVersion: If-Unmodified-Since answers 412, a version Conflict", async () => {
    const [contact] = fake.seedContacts(1);
    const version = versionOf(contact!.Id);
    clock.advance(2_000);
    fake.store.update("Contact", contact!.Id, { Phone: "+1 555 0100" });
    await expect(
      Promise.resolve(contacts.write!.update!(ctx, contact!.Id, { firstName: "Late" }, { ifVersion: version })),
    ).rejects.toMatchObject({ _tag: "Conflict", reason: "version" });
    const patch = fake.requests().find((r) => r.method === "PATCH" && r.path.includes("/sobjects/Contact/"));
    expect(patch?.status).toBe(412);
    await expect(
      Promise.resolve(
        contacts.write!.update!(ctx, contact!.Id, { firstName: "Now" }, { ifVersion: versionOf(contact!.Id) }),
      ),
    ).resolves.toMatchObject({ firstName: "Now", phone: "+1 555 0100" });
  });

  it("through callBatchWrite: the version of a written record is its LastModifiedDate", async () => {
    const [account] = fake.seedAccounts(1);
    clock.advance(3_000);
    const [result] = await Effect.runPromise(
      callBatchWrite(accounts, ctx, "update", [{ id: account!.Id, changes: { industry: "Retail" } }]),
    );
    expect(result).toMatchObject({
      ok: true,
      version: new Date(clock.now()).toISOString(),
      record: { data: { industry: "Retail" } },
    });
  });
});

describe("batch delete", () => {
  it("deletes in collections of 200; one already deleted succeeds; a stale ifVersion is a version Conflict", async () => {
    const seeded = fake.seedContacts(205);
    fake.store.delete("Contact", seeded[1]!.Id);
    const stale = versionOf(seeded[2]!.Id);
    clock.advance(2_000);
    fake.store.update("Contact", seeded[2]!.Id, { Phone: "+1 555 0002" });
    const results = (await batch.delete!(
      ctx,
      seeded.map((r, i) => ({
        id: r.Id,
        ...(i === 2 ? { ifVersion: stale } : i === 3 ? { ifVersion: versionOf(r.Id) } : {}),
      })),
    )) as ReadonlyArray<WriteResult<Contact>>;
    expect(results.map(outcome).filter((o) => o !== "ok")).toEqual(["Conflict"]);
    expect(results[2]).toMatchObject({ ok: false, error: { reason: "version" } });
    expect(calls("DELETE", "/composite/sobjects")).toBe(2);
    expect(fake.live("Contact").map((r) => r.Id)).toEqual([seeded[2]!.Id]);
  });
});
