import {
  AuthExpired,
  Conflict,
  type ConnectorContext,
  InvalidRecord,
  type ListedId,
  makeStandaloneContext,
  NotFound,
  RateLimited,
  type ReadOptions,
  type ReadPage,
  Unavailable,
} from "@tandem/core";
import {
  createManualClock,
  createSalesforceFake,
  outboundMessageRequest,
  outboundNotificationId,
  readResuming,
  salesforceFakeOAuthApp,
  salesforceHandlers,
} from "@tandem/testkit";
import { Redacted, Schema } from "effect";
import { XMLParser } from "fast-xml-parser";
import { HttpResponse, http } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import salesforce, {
  Account,
  Contact,
  concurrentLimitRetryAfterMs,
  outboundMessageAck,
  parseSalesforceDateTime,
  parseSforceLimitInfo,
  requestLimitRetryAfterMs,
  SalesforceConfig,
  soqlDateTime,
} from "../src/index.ts";

const instanceUrl = "https://acme.my.salesforce.test";
const loginUrl = "https://login.salesforce.test";
const clock = createManualClock(Date.UTC(2026, 5, 1));
// Batches as small as 1 (Salesforce's floor is 200), so paging shows on small data sets.
const fake = createSalesforceFake({ instanceUrl, loginUrl, clock, knobs: { minBatchSize: 1 } });
const server = setupServer(...salesforceHandlers(fake));

beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
beforeEach(() => fake.reset());
afterEach(() => server.resetHandlers());
afterAll(() => {
  fake.close();
  server.close();
});

const silent = { debug: () => {}, info: () => {}, warn: () => {} };

const oauth = {
  clientId: salesforceFakeOAuthApp.clientId,
  clientSecret: salesforceFakeOAuthApp.clientSecret,
  refreshToken: salesforceFakeOAuthApp.refreshToken,
};

const contextFor = (config: Record<string, unknown> = {}, timeoutMs = 5_000): ConnectorContext<SalesforceConfig> =>
  makeStandaloneContext(
    salesforce,
    Schema.decodeUnknownSync(SalesforceConfig)({ instanceUrl, ...oauth, pageSize: 100, ...config }),
    { http: { timeoutMs }, log: silent },
  );

const ctx = contextFor();
const { contacts, accounts } = salesforce.entities;

const readAll = async (source: unknown): Promise<Array<ReadPage>> => {
  const pages: Array<ReadPage> = [];
  for await (const page of source as AsyncIterable<ReadPage>) pages.push(page);
  return pages;
};

/** What the engine does with every record read. */
const decodeContacts = (pages: ReadonlyArray<ReadPage>) =>
  pages.flatMap((page) => page.records.map((record) => Schema.decodeUnknownSync(Contact)(record)));

const readContacts = (options: ReadOptions, context = ctx) => readAll(contacts.read(context, options));

const liveIds = () =>
  fake
    .live("Contact")
    .map((r) => r.Id)
    .sort();

const queries = () => fake.requests().filter((r) => r.soql !== undefined);

describe("full read", () => {
  it("queries by SystemModstamp, follows nextRecordsUrl and resumes from a saved cursor", async () => {
    fake.seedContacts(250);
    const pages = await readContacts({});
    expect(pages.map((p) => p.records.length)).toEqual([100, 100, 50]);
    expect(pages.at(-1)?.cursor).toBeUndefined();
    const records = decodeContacts(pages);
    expect(records.map((r) => r.id).sort()).toEqual(liveIds());
    const first = fake.live("Contact")[0]!;
    expect(records[0]).toMatchObject({
      id: first.Id,
      lastName: first.fields.LastName,
      email: first.fields.Email,
      accountId: null,
      updatedAt: new Date(first.SystemModstamp),
    });
    const times = records.map((r) => r.updatedAt.getTime());
    expect([...times].sort((a, b) => a - b)).toEqual(times);

    expect(queries().map((r) => [r.path.split("?")[0], r.soql])).toEqual([
      [
        "/services/data/v60.0/query",
        "SELECT Id, FirstName, LastName, Email, Phone, AccountId, CreatedDate, LastModifiedDate, IsDeleted, SystemModstamp FROM Contact ORDER BY SystemModstamp, Id",
      ],
    ]);
    const more = fake.requests().filter((r) => r.soql === undefined && r.path.startsWith("/services/data/"));
    expect(more.map((r) => r.path)).toEqual([
      expect.stringMatching(/^\/services\/data\/v60\.0\/query\/01g\w{15}-100$/),
      expect.stringMatching(/-200$/),
    ]);

    const resumed = decodeContacts(await readContacts({ cursor: pages[0]!.cursor }));
    expect(resumed.map((r) => r.id)).toEqual(records.slice(100).map((r) => r.id));
  });

  it("resumes with a new query from the last row read when the query locator expired", async () => {
    fake.seedContacts(250);
    const pages = await readContacts({});
    const all = decodeContacts(pages).map((r) => r.id);
    clock.advance(16 * 60 * 1000); // locators expire after 15 minutes unused
    const resumed = decodeContacts(await readContacts({ cursor: pages[0]!.cursor })).map((r) => r.id);
    expect(fake.requests().some((r) => r.status === 400)).toBe(true);
    // Everything after page 1 is read; the rows of the last second of page 1 are read again, unchanged.
    expect(resumed.slice(-150)).toEqual(all.slice(100));
    expect(resumed.length).toBeLessThanOrEqual(151);
    expect(queries().at(-1)?.soql).toMatch(/WHERE SystemModstamp >= \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ORDER BY/);
  });

  it("a cancelled read fails instead of ending early", async () => {
    fake.seedContacts(250);
    const controller = new AbortController();
    const pages: Array<ReadPage> = [];
    const failure = await (async () => {
      for await (const page of contacts.read({ ...ctx, signal: controller.signal }, {}) as AsyncIterable<ReadPage>) {
        pages.push(page);
        controller.abort();
      }
    })().catch((e: unknown) => e);
    expect(pages).toHaveLength(1);
    expect((failure as Error).name).toBe("AbortError");
  });

  it("reads accounts with their own fields", async () => {
    fake.seedAccounts(3);
    const records = (await readAll(accounts.read(ctx, {}))).flatMap((p) =>
      p.records.map((r) => Schema.decodeUnknownSync(Account)(r)),
    );
    expect(records).toHaveLength(3);
    expect(records[0]!.website).toMatch(/^https:\/\/account\d+\.example\.com$/);
    expect(records[0]!.id).toMatch(/^001/);
  });

  it("passes a malformed record through for the engine to reject, without stopping the read", async () => {
    const [bad] = fake.seedContacts(5);
    fake.knobs.malformedIds.add(bad!.Id);
    const pages = await readContacts({});
    const outcomes = pages[0]!.records.map((r) => Schema.decodeUnknownEither(Contact)(r)._tag);
    expect(outcomes.filter((t) => t === "Left")).toHaveLength(1);
    expect(outcomes.filter((t) => t === "Right")).toHaveLength(4);
    const failure = await Promise.resolve(contacts.get!(ctx, bad!.Id)).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(InvalidRecord);
    expect((failure as InvalidRecord).externalId).toBe(bad!.Id);
  });
});

describe("delta read", () => {
  it("reads changes since the bound (system changes included) and reports deletions from the recycle bin", async () => {
    const seeded = fake.seedContacts(20);
    fake.store.delete("Contact", seeded[1]!.Id); // deleted before the bound: not reported again
    clock.advance(1_000);
    const since = new Date(clock.now());
    clock.advance(1_000);
    fake.store.update("Contact", seeded[3]!.Id, { FirstName: "Changed" });
    // A rollup recalculation: SystemModstamp moves, LastModifiedDate does not.
    fake.store.touch("Contact", seeded[5]!.Id);
    fake.store.delete("Contact", seeded[7]!.Id);
    const pages = await readContacts({ since });
    const records = decodeContacts(pages);
    expect(records.map((r) => r.id)).toEqual([seeded[3]!.Id, seeded[5]!.Id]);
    expect(records[0]).toMatchObject({ firstName: "Changed" });
    expect(records[1]!.lastModifiedAt.getTime()).toBeLessThan(records[1]!.updatedAt.getTime());
    expect(pages.flatMap((p) => p.deleted ?? [])).toEqual([seeded[7]!.Id]);
    expect(contacts.deletes).toBe("api");
    const [delta] = queries();
    expect(delta!.path.startsWith("/services/data/v60.0/queryAll?")).toBe(true);
    expect(delta!.soql).toContain(`WHERE SystemModstamp >= ${soqlDateTime(since)} ORDER BY SystemModstamp, Id`);
  });

  it("formats the bound as an unquoted SOQL literal rounded down to the second, and drops rows before it", async () => {
    expect(soqlDateTime(new Date("2024-01-15T10:20:30.789Z"))).toBe("2024-01-15T10:20:30Z");
    expect(soqlDateTime(Date.UTC(2024, 0, 15))).toBe("2024-01-15T00:00:00Z");
    const second = Date.UTC(2026, 5, 1, 12, 0, 0);
    const early = fake.seedContacts(1, { endAt: second + 100 })[0]!;
    const onTime = fake.seedContacts(1, { endAt: second + 500 })[0]!;
    const since = new Date(second + 500);
    const ids = decodeContacts(await readContacts({ since })).map((r) => r.id);
    expect(queries()[0]!.soql).toContain("WHERE SystemModstamp >= 2026-06-01T12:00:00Z");
    expect(ids).toContain(onTime.Id);
    expect(ids).not.toContain(early.Id);
  });

  it("resumes a delta from a checkpointed cursor", async () => {
    fake.seedContacts(450, { endAt: clock.now() - 10_000, spacingMs: 1 });
    const since = new Date(0);
    const pages = await readContacts({ since });
    expect(pages).toHaveLength(5);
    const all = decodeContacts(pages).map((r) => r.id);
    const rest = decodeContacts(await readContacts({ since, cursor: pages[1]!.cursor })).map((r) => r.id);
    expect(rest).toEqual(all.slice(200));
  });

  /** Runs `edit` once, before the fake answers the `n`th request for a next page of a query. */
  const beforeNextPage = (n: number, edit: () => void) => {
    let pages = 0;
    server.use(
      http.get(`${instanceUrl}/services/data/v60.0/:endpoint/:locator`, () => {
        if (++pages === n) edit();
        // No answer: the fake answers.
      }),
    );
  };

  // Issue 18 (the HubSpot skip), checked for Salesforce: a record edited between two pages.
  it("a record edited between two pages of a delta: the locator pages a snapshot, nothing is skipped, the next delta reads the edit", async () => {
    const seeded = fake.seedContacts(450, { endAt: clock.now() - 100_000, spacingMs: 10 });
    const [read, unread] = [seeded[10]!, seeded[300]!];
    const unreadName = unread.fields.FirstName;
    beforeNextPage(1, () => {
      clock.advance(1_000);
      fake.store.update("Contact", read.Id, { FirstName: "Edited after its page" });
      fake.store.update("Contact", unread.Id, { FirstName: "Edited before its page" });
    });
    const first = decodeContacts(await readContacts({ since: new Date(0) }));
    expect(first.map((r) => r.id).sort()).toEqual(seeded.map((r) => r.Id).sort());
    // The result set was fixed when the query ran: both rows as they were then, each once.
    expect(first.filter((r) => r.id === unread.Id).map((r) => r.firstName)).toEqual([unreadName]);
    // The engine's next bound is the newest SystemModstamp read: both edits are after it.
    const cursor = Math.max(...first.map((r) => r.updatedAt.getTime()));
    const next = decodeContacts(await readContacts({ since: new Date(cursor) }));
    expect(next.filter((r) => r.firstName?.startsWith("Edited")).map((r) => [r.id, r.firstName])).toEqual([
      [read.Id, "Edited after its page"],
      [unread.Id, "Edited before its page"],
    ]);
  });

  it("a record edited between two pages and the query locator gone: the new query from the last row read skips nothing", async () => {
    const seeded = fake.seedContacts(450, { endAt: clock.now() - 100_000, spacingMs: 10 });
    const [read, unread] = [seeded[10]!, seeded[300]!];
    beforeNextPage(2, () => {
      clock.advance(16 * 60 * 1000); // unused for 15 minutes: INVALID_QUERY_LOCATOR
      fake.store.update("Contact", read.Id, { FirstName: "Edited after its page" });
      fake.store.update("Contact", unread.Id, { FirstName: "Edited before its page" });
    });
    const records = decodeContacts(await readContacts({ since: new Date(0) }));
    expect(fake.requests().some((r) => r.status === 400)).toBe(true);
    expect(new Set(records.map((r) => r.id))).toEqual(new Set(seeded.map((r) => r.Id)));
    // Both edits moved behind the read position and were read by the new query.
    const latest = new Map(records.map((r) => [r.id, r.firstName]));
    expect(latest.get(read.Id)).toBe("Edited after its page");
    expect(latest.get(unread.Id)).toBe("Edited before its page");
  });

  it("a read checkpointed page by page ends with exactly the fake's data under 5xx", async () => {
    fake.seedContacts(1_000, { endAt: clock.now() - 100_000, spacingMs: 7 });
    fake.knobs.serverErrorRate = 0.3;
    const { pages, failures } = await readResuming(
      (cursor) => contacts.read(ctx, { since: new Date(0), cursor }) as AsyncIterable<ReadPage>,
    );
    const stored = new Map(decodeContacts(pages).map((record) => [record.id, record]));
    expect(failures.unavailable).toBeGreaterThan(0);
    expect(failures.rateLimited).toBe(0);
    expect([...stored.keys()].sort()).toEqual(liveIds());
  });
});

describe("ids and get", () => {
  it("readIds yields live ids with their SystemModstamp (SELECT Id, SystemModstamp)", async () => {
    const seeded = fake.seedContacts(150);
    fake.store.delete("Contact", seeded[0]!.Id);
    const pages: Array<ReadonlyArray<ListedId>> = [];
    for await (const ids of contacts.readIds!(ctx) as AsyncIterable<ReadonlyArray<ListedId>>) pages.push(ids);
    expect(pages.map((p) => p.length)).toEqual([100, 49]);
    expect(pages.flat()).toEqual(seeded.slice(1).map((r) => ({ id: r.Id, updatedAt: new Date(r.SystemModstamp) })));
    expect(queries().map((r) => r.soql)).toEqual(["SELECT Id, SystemModstamp FROM Contact"]);
  });

  it("get returns the record, and null for an unknown id (NOT_FOUND) or a deleted one (ENTITY_IS_DELETED)", async () => {
    const [one, two] = fake.seedContacts(2);
    fake.store.delete("Contact", two!.Id);
    expect(await contacts.get!(ctx, one!.Id)).toMatchObject({ id: one!.Id, email: one!.fields.Email });
    expect(await contacts.get!(ctx, "003000000000000AAA")).toBeNull();
    expect(await contacts.get!(ctx, two!.Id)).toBeNull();
    expect(fake.requests().map((r) => r.status)).toEqual([200, 404, 404]);
  });
});

describe("writes", () => {
  it("creates, updates and deletes a contact", async () => {
    const [account] = fake.seedAccounts(1);
    const created = (await contacts.write!.create!(ctx, {
      firstName: "Ada",
      lastName: "Lovelace",
      email: "ada@example.com",
      accountId: account!.Id,
    })) as Contact;
    expect(created).toMatchObject({ firstName: "Ada", lastName: "Lovelace", accountId: account!.Id, phone: null });
    expect(fake.requests().find((r) => r.method === "POST")?.status).toBe(201);

    clock.advance(5_000);
    const updated = (await contacts.write!.update!(ctx, created.id, {
      phone: "+15550100",
      firstName: null,
    })) as Contact;
    expect(updated).toMatchObject({ firstName: null, phone: "+15550100", lastName: "Lovelace" });
    expect(updated.updatedAt.getTime()).toBe(clock.now());
    expect(fake.requests().find((r) => r.method === "PATCH")?.status).toBe(204);

    await contacts.write!.delete!(ctx, created.id);
    expect(fake.store.get("Contact", created.id)?.IsDeleted).toBe(true);
    // Deleting again (a retry after a lost answer) is done already.
    await contacts.write!.delete!(ctx, created.id);
  });

  it("field errors are InvalidRecord with Salesforce's code; missing or deleted ids NotFound", async () => {
    const missingName = await Promise.resolve(contacts.write!.create!(ctx, { firstName: "No last name" })).catch(
      (e: unknown) => e,
    );
    expect(missingName).toBeInstanceOf(InvalidRecord);
    expect((missingName as InvalidRecord).message).toContain("REQUIRED_FIELD_MISSING");
    expect((missingName as InvalidRecord).message).toContain("LastName");
    await expect(
      Promise.resolve(contacts.write!.create!(ctx, { lastName: "X", email: "not-an-email" })),
    ).rejects.toBeInstanceOf(InvalidRecord);
    await expect(
      Promise.resolve(contacts.write!.update!(ctx, "003000000000000AAA", { phone: "1" })),
    ).rejects.toBeInstanceOf(NotFound);
    const [gone] = fake.seedContacts(1);
    fake.store.delete("Contact", gone!.Id);
    const deleted = await Promise.resolve(contacts.write!.update!(ctx, gone!.Id, { phone: "1" })).catch(
      (e: unknown) => e,
    );
    expect(deleted).toBeInstanceOf(NotFound);
    expect((deleted as NotFound).message).toContain("ENTITY_IS_DELETED");
    await expect(Promise.resolve(contacts.write!.delete!(ctx, "003000000000000AAA"))).rejects.toBeInstanceOf(NotFound);
  });

  it("a duplicate rule's block is a Conflict naming the existing record", async () => {
    fake.store.duplicateRuleOnEmail = true;
    const [existing] = fake.seedContacts(1);
    const failure = await Promise.resolve(
      contacts.write!.create!(ctx, { lastName: "Twin", email: existing!.fields.Email as string }),
    ).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(Conflict);
    expect((failure as Conflict).externalId).toBe(existing!.Id);
    expect((failure as Conflict).message).toContain("DUPLICATES_DETECTED");
  });

  it("creates and updates accounts", async () => {
    const created = (await accounts.write!.create!(ctx, { name: "Acme", website: "https://acme.test" })) as Account;
    expect(created).toMatchObject({ name: "Acme", industry: null });
    const updated = (await accounts.write!.update!(ctx, created.id, { industry: "Retail" })) as Account;
    expect(updated).toMatchObject({ name: "Acme", industry: "Retail", website: "https://acme.test" });
  });
});

describe("auth", () => {
  it("refreshes once after a 401 INVALID_SESSION_ID and retries", async () => {
    fake.seedContacts(3);
    expect(decodeContacts(await readContacts({}))).toHaveLength(3);
    fake.expireSessions();
    const before = fake.requests().length;
    expect(decodeContacts(await readContacts({}))).toHaveLength(3);
    expect(
      fake
        .requests()
        .slice(before)
        .map((r) => `${r.method} ${r.path.split("?")[0]} ${r.status}`),
    ).toEqual([
      "GET /services/data/v60.0/query 401",
      "POST /services/oauth2/token 200",
      "GET /services/data/v60.0/query 200",
    ]);
  });

  it("takes the instance from the token response (instance_url), the token from loginUrl", async () => {
    fake.seedContacts(2);
    // No handler serves this host: a call to it fails the test (onUnhandledFrame: "error").
    const moved = contextFor({ instanceUrl: "https://old-instance.my.salesforce.test", loginUrl });
    expect(decodeContacts(await readContacts({}, moved))).toHaveLength(2);
  });

  it("concurrent calls after an expiry share one refresh", async () => {
    const seeded = fake.seedContacts(3);
    await contacts.get!(ctx, seeded[0]!.Id);
    fake.expireSessions();
    const before = fake.requests().length;
    const found = await Promise.all(seeded.map((r) => contacts.get!(ctx, r.Id)));
    expect(found.map((c) => (c as Contact | null)?.id)).toEqual(seeded.map((r) => r.Id));
    expect(
      fake
        .requests()
        .slice(before)
        .filter((r) => r.path === "/services/oauth2/token"),
    ).toHaveLength(1);
  });

  it("a revoked refresh token is AuthExpired, at the start or after a 401", async () => {
    const revoked = contextFor({ refreshToken: "revoked" });
    const failure = await readContacts({}, revoked).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(AuthExpired);
    expect((failure as AuthExpired).message).toContain("invalid_grant");

    await readContacts({});
    fake.failNext({ kind: "sessionExpired" });
    fake.failNextTokenRequest({ kind: "invalidGrant" });
    await expect(readContacts({})).rejects.toBeInstanceOf(AuthExpired);
  });

  it("check accepts good credentials and refuses a wrong client secret", async () => {
    await expect(salesforce.check!(ctx)).resolves.toBeUndefined();
    const failure = await Promise.resolve(salesforce.check!(contextFor({ clientSecret: "wrong" }))).catch(
      (e: unknown) => e,
    );
    expect(failure).toBeInstanceOf(AuthExpired);
    expect((failure as AuthExpired).message).toContain("invalid_client");
  });

  it("the config keeps secrets redacted and has defaults", () => {
    const config = Schema.decodeUnknownSync(SalesforceConfig)({ instanceUrl, ...oauth });
    expect(String(config.clientSecret)).not.toContain(oauth.clientSecret);
    expect(Redacted.value(config.refreshToken)).toBe(oauth.refreshToken);
    expect(config).toMatchObject({ apiVersion: "v60.0", pageSize: 2_000 });
    expect(() => Schema.decodeUnknownSync(SalesforceConfig)({ instanceUrl, ...oauth, pageSize: 5_000 })).toThrow();
  });
});

describe("limits and transport errors", () => {
  it("403 REQUEST_LIMIT_EXCEEDED is RateLimited: an hour for the daily limit, 30 s for concurrency", async () => {
    fake.seedContacts(1);
    fake.failNext({ kind: "requestLimit" });
    const daily = await readContacts({}).catch((e: unknown) => e);
    expect(daily).toBeInstanceOf(RateLimited);
    expect((daily as RateLimited).retryAfterMs).toBe(requestLimitRetryAfterMs);
    expect(requestLimitRetryAfterMs).toBe(3_600_000);
    expect((daily as RateLimited).message).toContain("REQUEST_LIMIT_EXCEEDED: daily request limit");
    fake.failNext({ kind: "requestLimit", concurrent: true });
    const concurrent = await readContacts({}).catch((e: unknown) => e);
    expect((concurrent as RateLimited).retryAfterMs).toBe(concurrentLimitRetryAfterMs);
    expect((concurrent as RateLimited).message).toContain("REQUEST_LIMIT_EXCEEDED: concurrent request limit");
  });

  it("the org's limit from Sforce-Limit-Info: calls past it are RateLimited with the usage", async () => {
    fake.seedContacts(1);
    fake.knobs.apiLimit = 3;
    fake.knobs.enforceApiLimit = true;
    await contacts.get!(ctx, fake.live("Contact")[0]!.Id);
    await readContacts({});
    await readContacts({});
    const failure = await readContacts({}).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(RateLimited);
    expect((failure as RateLimited).message).toContain("api-usage 3/3");
    expect(parseSforceLimitInfo("api-usage=8688/15000")).toEqual({ used: 8688, limit: 15_000 });
    expect(parseSforceLimitInfo(null)).toBeUndefined();
  });

  it("429 is RateLimited with Retry-After; 503 and hangs are Unavailable", async () => {
    fake.seedContacts(1);
    fake.failNext({ kind: "status", status: 429, retryAfterSeconds: 7 });
    const limited = await readContacts({}).catch((e: unknown) => e);
    expect((limited as RateLimited).retryAfterMs).toBe(7_000);
    fake.failNext({ kind: "status", status: 503 });
    await expect(readContacts({})).rejects.toBeInstanceOf(Unavailable);
    fake.failNext({ kind: "hang" });
    const failure = await readContacts({}, contextFor({}, 100)).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(Unavailable);
    expect((failure as Unavailable).message).toContain("timed out");
  });

  it("never quotes a response body into an error: a 404 page, a message off a 404, the token endpoint's prose", async () => {
    // What an internal service would answer if instanceUrl or loginUrl pointed at it.
    const secret = "INTERNAL-ONLY-BODY: db_password=hunter2";
    const messageOf = (e: unknown) => (e as Error).message;
    // The connector's check is async (MaybeEffect in the type): what it rejects with.
    const failed = (call: unknown) =>
      (call as Promise<void>).then(
        () => undefined,
        (e: unknown) => e,
      );
    const query = `${instanceUrl}/services/data/:version/query`;
    server.use(http.get(query, () => HttpResponse.text(secret, { status: 404 })));
    const page404 = await failed(salesforce.check!(ctx));
    expect(page404).toBeInstanceOf(NotFound);
    expect(messageOf(page404)).toBe("Salesforce 404 UNKNOWN");

    server.use(
      http.get(query, () => HttpResponse.json([{ errorCode: "NOT_FOUND", message: secret }], { status: 404 })),
    );
    expect(messageOf(await failed(salesforce.check!(ctx)))).toBe("Salesforce 404 NOT_FOUND");

    const elsewhere = "https://login.elsewhere.test";
    server.use(
      http.post(`${elsewhere}/services/oauth2/token`, () =>
        HttpResponse.json({ error: "invalid_grant", error_description: secret }, { status: 400 }),
      ),
    );
    const refused = await failed(salesforce.check!(contextFor({ loginUrl: elsewhere })));
    expect(refused).toBeInstanceOf(AuthExpired);
    expect(messageOf(refused)).toBe(
      "salesforce could not obtain an access token: Salesforce refused the refresh token (invalid_grant). The connection's credentials must be renewed (update the connection's config).",
    );
  });

  it("reads REST datetimes with their colon-less offset", () => {
    expect(parseSalesforceDateTime("2021-12-02T18:25:26.000+0000")).toBe(Date.UTC(2021, 11, 2, 18, 25, 26));
    expect(parseSalesforceDateTime("2021-12-02T20:25:26.000+0200")).toBe(Date.UTC(2021, 11, 2, 18, 25, 26));
    expect(parseSalesforceDateTime("yesterday")).toBeUndefined();
  });
});

describe("outbound messages", () => {
  const webhooks = salesforce.webhooks!;
  const receiver = "https://tandem.test/webhooks/salesforce/00000000-0000-4000-8000-000000000000";
  const orgConfig = (outboundMessageOrgId?: string) =>
    contextFor(outboundMessageOrgId === undefined ? {} : { outboundMessageOrgId }).config;

  const message = () => {
    const [contact] = fake.seedContacts(1);
    const [account] = fake.seedAccounts(1);
    const ids = [outboundNotificationId(), outboundNotificationId()];
    const request = outboundMessageRequest(receiver, {
      organizationId: fake.organizationId,
      instanceUrl,
      notifications: [
        { id: ids[0]!, record: contact! },
        { id: ids[1]!, record: account!, fields: ["Id", "Name", "LastModifiedDate"] },
      ],
    });
    return { request, contact: contact!, account: account!, ids };
  };

  it("parses notifications into updated events keyed by the notification id", () => {
    const { request, contact, account, ids } = message();
    expect(webhooks.parse(request)).toEqual([
      {
        eventId: ids[0],
        entity: "contacts",
        externalId: contact.Id,
        kind: "updated",
        occurredAt: new Date(contact.SystemModstamp),
      },
      {
        eventId: ids[1],
        entity: "accounts",
        externalId: account.Id,
        kind: "updated",
        occurredAt: new Date(account.LastModifiedDate),
      },
    ]);
  });

  it("drops sObjects it does not sync, and times a notification without dates at now", () => {
    const { request, contact } = message();
    const opportunity = {
      ...request,
      rawBody: request.rawBody.replace('xsi:type="sf:Account"', 'xsi:type="sf:Opportunity"'),
    };
    expect(webhooks.parse(opportunity).map((e) => e.entity)).toEqual(["contacts"]);
    const undated = outboundMessageRequest(receiver, {
      organizationId: fake.organizationId,
      instanceUrl,
      notifications: [{ id: outboundNotificationId(), record: contact, fields: ["Id", "Email"] }],
    });
    const before = Date.now();
    const [event] = webhooks.parse(undated);
    expect(event!.occurredAt.getTime()).toBeGreaterThanOrEqual(before);
  });

  it("verifies the organization id (15 or 18 characters) and refuses another org's or an unconfigured connection", () => {
    const { request } = message();
    const now = new Date();
    expect(webhooks.verify({ config: orgConfig(fake.organizationId), now }, request)).toBe(true);
    expect(webhooks.verify({ config: orgConfig(fake.organizationId.slice(0, 15)), now }, request)).toBe(true);
    expect(webhooks.verify({ config: orgConfig("00D5g000004XyZbEAK"), now }, request)).toBe(false);
    expect(webhooks.verify({ config: orgConfig(), now }, request)).toBe(false);
    const forged = { ...request, rawBody: request.rawBody.replace(fake.organizationId, "00D000000000001AAA") };
    expect(webhooks.verify({ config: orgConfig(fake.organizationId), now }, forged)).toBe(false);
  });

  it("a body that is not an outbound message is refused by verify and InvalidRecord in parse", () => {
    const junk = { method: "POST", url: receiver, headers: new Headers(), rawBody: "<html><body>hi" };
    const config = orgConfig(fake.organizationId);
    expect(webhooks.verify({ config, now: new Date() }, junk)).toBe(false);
    expect(() => webhooks.parse(junk)).toThrow(InvalidRecord);
    const otherSoap = { ...junk, rawBody: "<soapenv:Envelope><soapenv:Body><x/></soapenv:Body></soapenv:Envelope>" };
    expect(() => webhooks.parse(otherSoap)).toThrow(/not a Salesforce Outbound Message/);
  });

  it("acknowledges with the SOAP Ack Salesforce waits for", () => {
    const answer = webhooks.acknowledge!({ accepted: 2, duplicates: 0, ignored: 0 });
    expect(answer).toMatchObject({ status: 200, contentType: expect.stringContaining("text/xml") });
    const parsed = new XMLParser({ removeNSPrefix: true, parseTagValue: false }).parse(answer.body);
    expect(parsed.Envelope.Body.notificationsResponse.Ack).toBe("true");
    expect(answer.body).toBe(outboundMessageAck);
  });
});
