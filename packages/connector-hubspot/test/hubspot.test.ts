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
  createHubSpotFake,
  createManualClock,
  hubSpotFakeOAuthApp,
  hubSpotFakeToken,
  hubSpotHandlers,
  readResuming,
} from "@tandem/testkit";
import { Schema } from "effect";
import { HttpResponse, http } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import hubspot, {
  Company,
  Contact,
  HubSpotConfig,
  hubSpotRateBudget,
  hubSpotRateLimit,
  upsertContactsByEmail,
} from "../src/index.ts";

const baseUrl = "https://hubspot.test";
const clock = createManualClock(Date.UTC(2026, 5, 1));
const fake = createHubSpotFake({ baseUrl, clock });
const server = setupServer(...hubSpotHandlers(fake));

beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
beforeEach(() => fake.reset());
afterEach(() => server.resetHandlers());
afterAll(() => {
  fake.close();
  server.close();
});

const silent = { debug: () => {}, info: () => {}, warn: () => {} };

const contextFor = (config: Record<string, unknown>, timeoutMs = 5_000): ConnectorContext<HubSpotConfig> =>
  makeStandaloneContext(hubspot, Schema.decodeUnknownSync(HubSpotConfig)({ baseUrl, ...config }), {
    http: { timeoutMs },
    log: silent,
  });

const ctx = contextFor({ accessToken: hubSpotFakeToken });
const { contacts, companies } = hubspot.entities;

const readAll = async (source: unknown): Promise<Array<ReadPage>> => {
  const pages: Array<ReadPage> = [];
  for await (const page of source as AsyncIterable<ReadPage>) pages.push(page);
  return pages;
};

/** What the engine does with every record read. */
const decodeContacts = (pages: ReadonlyArray<ReadPage>) =>
  pages.flatMap((page) => page.records.map((record) => Schema.decodeUnknownSync(Contact)(record)));

const readContacts = (options: ReadOptions) => readAll(contacts.read(ctx, options));

describe("full read", () => {
  it("pages the list endpoint 100 at a time and resumes from a saved cursor", async () => {
    fake.seedContacts(250);
    const pages = await readContacts({});
    expect(pages.map((p) => p.records.length)).toEqual([100, 100, 50]);
    expect(pages.at(-1)?.cursor).toBeUndefined();
    const records = decodeContacts(pages);
    expect(new Set(records.map((r) => r.id))).toEqual(new Set(fake.live("contacts").map((o) => o.id)));
    const first = fake.live("contacts")[0]!;
    expect(records[0]).toMatchObject({ id: first.id, email: first.properties.email, archived: false });

    const resumed = decodeContacts(await readContacts({ cursor: pages[0]!.cursor }));
    expect(resumed.map((r) => r.id)).toEqual(records.slice(100).map((r) => r.id));
  });

  it("a cancelled read fails instead of ending early", async () => {
    fake.seedContacts(250);
    const controller = new AbortController();
    const cancellable = { ...ctx, signal: controller.signal };
    const pages: Array<ReadPage> = [];
    const failure = await (async () => {
      for await (const page of contacts.read(cancellable, {}) as AsyncIterable<ReadPage>) {
        pages.push(page);
        controller.abort();
      }
    })().catch((e: unknown) => e);
    expect(pages).toHaveLength(1);
    expect((failure as Error).name).toBe("AbortError");
  });

  it("reads companies with their own properties", async () => {
    fake.seedCompanies(3);
    const pages = await readAll(companies.read(ctx, {}));
    const records = pages.flatMap((p) => p.records.map((r) => Schema.decodeUnknownSync(Company)(r)));
    expect(records).toHaveLength(3);
    expect(records[0]!.domain).toMatch(/example\.com$/);
  });

  it("companies: delta on hs_lastmodifieddate, writes, and the credential check", async () => {
    const seeded = fake.seedCompanies(5);
    // GTE: the bound is inclusive, so start just after the last seeded company.
    const since = new Date(clock.now() + 1);
    clock.advance(1_000);
    fake.store.update("companies", seeded[2]!.id, { city: "Porto" });
    const changed = (await readAll(companies.read(ctx, { since }))).flatMap((p) =>
      p.records.map((r) => Schema.decodeUnknownSync(Company)(r)),
    );
    expect(changed.map((c) => [c.id, c.city])).toEqual([[seeded[2]!.id, "Porto"]]);
    const search = fake.requests().find((r) => r.path.endsWith("/companies/search"));
    expect(search?.status).toBe(200);
    const created = (await companies.write!.create!(ctx, { name: "Acme", domain: "acme.test" })) as Company;
    expect(created).toMatchObject({ name: "Acme", domain: "acme.test", industry: null });
    await expect(hubspot.check!(ctx)).resolves.toBeUndefined();
    await expect(hubspot.check!(contextFor({ accessToken: "pat-nope" }))).rejects.toBeInstanceOf(AuthExpired);
  });

  it("passes a malformed record through for the engine to reject, without stopping the read", async () => {
    const [bad] = fake.seedContacts(5);
    fake.knobs.malformedIds.add(bad!.id);
    const pages = await readContacts({});
    const outcomes = pages[0]!.records.map((r) => Schema.decodeUnknownEither(Contact)(r)._tag);
    expect(outcomes.filter((t) => t === "Left")).toHaveLength(1);
    expect(outcomes.filter((t) => t === "Right")).toHaveLength(4);
  });
});

describe("delta read", () => {
  it("reads everything changed since a date, past the 10,000-result search cap, each record once", async () => {
    // 10,300 contacts; 30 share one timestamp right where the first query stops (ties across the restart).
    const start = clock.now();
    fake.seedContacts(9_990, { endAt: start - 1_000_000, spacingMs: 10 });
    fake.seedContacts(30, { endAt: start - 500_000, spacingMs: 0 });
    fake.seedContacts(280, { endAt: start, spacingMs: 10 });
    const since = new Date(start - 10_000_000);
    const pages = await readContacts({ since });
    const records = decodeContacts(pages).filter((r) => !r.archived);
    const ids = records.map((r) => r.id);
    expect(ids.length).toBe(10_300);
    expect(new Set(ids).size).toBe(10_300);
    const searches = fake.requests().filter((r) => r.path.endsWith("/search"));
    expect(searches.every((r) => r.status === 200)).toBe(true);
    // 50 pages fill the first query; the restart reads the rest.
    expect(searches.length).toBeGreaterThan(50);
    // Ascending order by modification time across the restart.
    const times = records.map((r) => r.updatedAt.getTime());
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });

  it("a record edited between two search pages moves behind the read: no neighbour is skipped", async () => {
    const seeded = fake.seedContacts(450, { endAt: clock.now() - 100_000, spacingMs: 10 });
    const edited = seeded[10]!;
    let searches = 0;
    server.use(
      http.post(`${baseUrl}/crm/v3/objects/contacts/search`, () => {
        // Page 1 has been served; before page 2 is answered, a record of page 1 is edited and
        // moves to the end of the sorted results. Returning nothing lets the fake answer.
        if (++searches === 2) {
          clock.advance(1_000);
          fake.store.update("contacts", edited.id, { jobtitle: "Edited between pages" });
        }
      }),
    );
    const records = decodeContacts(await readContacts({ since: new Date(0) }));
    expect(searches).toBeGreaterThan(2);
    const read = new Set(records.map((r) => r.id));
    const skipped = seeded.filter((o) => !read.has(o.id)).map((o) => o.id);
    expect(skipped).toEqual([]);
    // The edit itself is read in the same delta (its new modification time is ahead of the read).
    expect(records.filter((r) => r.id === edited.id).at(-1)).toMatchObject({ jobTitle: "Edited between pages" });
  });

  for (const order of ["id", "id-descending"] as const) {
    it(`more objects share one modification time than a page holds (ties by ${order}): each read once`, async () => {
      fake.knobs.searchTieOrder = order;
      const start = clock.now() - 100_000;
      const seeded = [
        ...fake.seedContacts(50, { endAt: start, spacingMs: 10 }),
        ...fake.seedContacts(450, { endAt: start + 1_000, spacingMs: 0 }),
        ...fake.seedContacts(50, { endAt: start + 2_000, spacingMs: 10 }),
      ];
      const ids = decodeContacts(await readContacts({ since: new Date(0) })).map((r) => r.id);
      expect(ids).toHaveLength(550);
      expect([...ids].sort()).toEqual(seeded.map((o) => o.id).sort());
    });
  }

  it("never meets the search cap, even one lower than documented: every page is a new query", async () => {
    // Before keyset paging, the read paged by `after` and restarted on this 400 (one was expected).
    fake.knobs.searchResultCap = 1_000;
    fake.seedContacts(1_500, { endAt: clock.now() - 100_000, spacingMs: 5 });
    const ids = decodeContacts(await readContacts({ since: new Date(0) })).map((r) => r.id);
    expect(new Set(ids).size).toBe(1_500);
    expect(ids).toHaveLength(1_500);
    expect(fake.requests().filter((r) => r.status === 400)).toHaveLength(0);
  });

  it("a read checkpointed page by page ends with exactly the fake's data under 5xx and 429s", async () => {
    fake.seedContacts(1_200, { endAt: clock.now() - 100_000, spacingMs: 7 });
    fake.knobs.serverErrorRate = 0.3;
    fake.knobs.rateLimit = { max: 3, intervalMs: 10_000 };
    const since = new Date(0);
    // What the engine does: resume from the last checkpoint after a retryable error.
    const { pages, failures } = await readResuming(
      (cursor) => contacts.read(ctx, { since, cursor }) as AsyncIterable<ReadPage>,
      (ms) => clock.advance(ms),
    );
    const stored = new Map(decodeContacts(pages).map((record) => [record.id, record]));
    expect(failures.rateLimited).toBeGreaterThan(0);
    expect(failures.unavailable).toBeGreaterThan(0);
    expect([...stored.keys()].sort()).toEqual(
      fake
        .live("contacts")
        .map((o) => o.id)
        .sort(),
    );
    for (const object of fake.live("contacts")) expect(stored.get(object.id)?.email).toBe(object.properties.email);
  });

  it("ends with the archived listing: ids archived since the bound come back as deletions", async () => {
    const seeded = fake.seedContacts(20);
    fake.store.archive("contacts", seeded[1]!.id); // archived before the bound: not reported again
    clock.advance(1_000);
    const since = new Date(clock.now());
    clock.advance(1_000);
    fake.store.update("contacts", seeded[3]!.id, { firstname: "Changed" });
    fake.store.archive("contacts", seeded[7]!.id);
    const pages = await readContacts({ since });
    const records = decodeContacts(pages);
    expect(records.find((r) => r.id === seeded[3]!.id)).toMatchObject({ firstName: "Changed", archived: false });
    expect(records.some((r) => r.archived)).toBe(false);
    expect(pages.flatMap((p) => p.deleted ?? [])).toEqual([seeded[7]!.id]);
    expect(contacts.deletes).toBe("api");
  });

  it("requests the archived listing while it searches: the delta's requests overlap", async () => {
    fake.seedContacts(450, { endAt: clock.now() - 10_000, spacingMs: 1 });
    fake.knobs.latencyMs = 30;
    let inFlight = 0;
    let most = 0;
    const started = () => {
      inFlight++;
      most = Math.max(most, inFlight);
    };
    const ended = () => {
      inFlight--;
    };
    server.events.on("request:start", started);
    server.events.on("request:end", ended);
    try {
      const pages = await readContacts({ since: new Date(0) });
      expect(new Set(decodeContacts(pages).map((r) => r.id)).size).toBe(450);
    } finally {
      server.events.removeListener("request:start", started);
      server.events.removeListener("request:end", ended);
    }
    // three search pages of 200 and the archived listing, the listing in flight beside a search
    expect(most).toBe(2);
    const paths = fake.requests().map((r) => r.path);
    expect(paths.filter((p) => p.endsWith("/search"))).toHaveLength(3);
    expect(paths.filter((p) => !p.endsWith("/search"))).toHaveLength(1);
  });

  it("resumes a delta from a checkpointed cursor", async () => {
    fake.seedContacts(450, { endAt: clock.now() - 10_000, spacingMs: 1 });
    const since = new Date(0);
    const pages = await readContacts({ since });
    const all = decodeContacts(pages).map((r) => r.id);
    const rest = decodeContacts(await readContacts({ since, cursor: pages[1]!.cursor })).map((r) => r.id);
    const readBefore = pages[0]!.records.length + pages[1]!.records.length;
    expect(readBefore).toBeGreaterThan(390);
    expect(rest).toEqual(all.slice(readBefore));
  });

  it("a checkpoint written by the earlier offset paging resumes from its query's bound", async () => {
    const seeded = fake.seedContacts(450, { endAt: clock.now() - 10_000, spacingMs: 1 });
    const bound = seeded[100]!.updatedAt;
    // What offset paging checkpointed mid-query: its bound, an offset and ids read at the bound.
    const legacy = JSON.stringify({
      phase: "search",
      since: 0,
      operator: "GTE",
      value: bound,
      after: "200",
      skip: [],
      lastIds: [seeded[299]!.id],
      last: seeded[299]!.updatedAt,
    });
    const ids = decodeContacts(await readContacts({ since: new Date(0), cursor: legacy })).map((r) => r.id);
    expect([...ids].sort()).toEqual(
      seeded
        .slice(100)
        .map((o) => o.id)
        .sort(),
    );
  });
});

describe("ids and get", () => {
  it("readIds yields live ids for reconciliation, each with its lastmodifieddate", async () => {
    const seeded = fake.seedContacts(150);
    fake.store.archive("contacts", seeded[0]!.id);
    const pages: Array<ReadonlyArray<ListedId>> = [];
    for await (const ids of contacts.readIds!(ctx) as AsyncIterable<ReadonlyArray<ListedId>>) pages.push(ids);
    expect(pages.flat()).toEqual(seeded.slice(1).map((o) => ({ id: o.id, updatedAt: new Date(o.updatedAt) })));
    const lists = fake.requests().filter((r) => r.method === "GET");
    expect(
      lists.every((r) => new URL(`https://x${r.path}`).searchParams.get("properties") === "lastmodifieddate"),
    ).toBe(true);
  });

  it("get returns the record, and null for a missing or archived id (404)", async () => {
    const [one, two] = fake.seedContacts(2);
    fake.store.archive("contacts", two!.id);
    const found = await contacts.get!(ctx, one!.id);
    expect(found).toMatchObject({ id: one!.id, email: one!.properties.email });
    expect(await contacts.get!(ctx, "999999")).toBeNull();
    expect(await contacts.get!(ctx, two!.id)).toBeNull();
  });
});

describe("writes", () => {
  it("creates, updates and archives a contact", async () => {
    const created = (await contacts.write!.create!(ctx, { email: "ada@example.com", firstName: "Ada" })) as Contact;
    expect(created).toMatchObject({ email: "ada@example.com", firstName: "Ada", archived: false });
    expect(fake.store.get("contacts", created.id)?.properties.firstname).toBe("Ada");

    clock.advance(5_000);
    const updated = (await contacts.write!.update!(ctx, created.id, {
      lastName: "Lovelace",
      firstName: null,
    })) as Contact;
    expect(updated).toMatchObject({ email: "ada@example.com", firstName: null, lastName: "Lovelace" });
    expect(updated.updatedAt.getTime()).toBe(clock.now());

    await contacts.write!.delete!(ctx, created.id);
    expect(fake.store.get("contacts", created.id)?.archived).toBe(true);
  });

  it("a duplicate email is a Conflict naming the existing id (409)", async () => {
    const [existing] = fake.seedContacts(1);
    const failure = await Promise.resolve(
      contacts.write!.create!(ctx, { email: existing!.properties.email! }) as Promise<Contact>,
    ).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(Conflict);
    expect((failure as Conflict).externalId).toBe(existing!.id);
    expect((failure as Conflict).message).toContain(`Existing ID: ${existing!.id}`);
  });

  it("an invalid property is InvalidRecord (400), a missing id NotFound (404)", async () => {
    await expect(contacts.write!.create!(ctx, { email: "not-an-email" }) as Promise<Contact>).rejects.toBeInstanceOf(
      InvalidRecord,
    );
    await expect(contacts.write!.update!(ctx, "424242", { firstName: "x" }) as Promise<Contact>).rejects.toBeInstanceOf(
      NotFound,
    );
  });

  it("batch upsert by email creates and updates in chunks of 100 and reports a 207 partial failure", async () => {
    const existing = fake.seedContacts(10);
    const inputs = [
      ...existing.map((o) => ({ email: o.properties.email!, lastName: "Updated" })),
      ...Array.from({ length: 139 }, (_, i) => ({ email: `new${i}@example.com`, firstName: `New ${i}` })),
      { email: "broken@example.com", phone: { nested: true } as unknown as string },
    ];
    const result = await upsertContactsByEmail(ctx, inputs);
    expect(result.contacts).toHaveLength(149);
    expect(result.createdIds).toHaveLength(139);
    expect(result.failures).toHaveLength(1);
    expect(result.failures[0]!.category).toBe("VALIDATION_ERROR");
    expect(
      fake
        .requests()
        .filter((r) => r.path.endsWith("/batch/upsert"))
        .map((r) => r.status),
    ).toEqual([200, 207]);
    expect(fake.store.get("contacts", existing[0]!.id)?.properties.lastname).toBe("Updated");
    expect(fake.live("contacts")).toHaveLength(149);
  });
});

describe("errors from the transport", () => {
  it("a refused private app token is AuthExpired (401)", async () => {
    const refused = contextFor({ accessToken: "pat-wrong" });
    await expect(readAll(contacts.read(refused, {}))).rejects.toBeInstanceOf(AuthExpired);
  });

  it("a 429 is RateLimited with HubSpot's delay, and headers give the rate budget", async () => {
    fake.knobs.rateLimit = { max: 2, intervalMs: 10_000 };
    fake.seedContacts(1);
    const response = await fetch(`${baseUrl}/crm/v3/objects/contacts`, {
      headers: { authorization: `Bearer ${hubSpotFakeToken}` },
    });
    expect(hubSpotRateBudget(response.headers)).toEqual({
      max: 2,
      remaining: 1,
      intervalMs: 10_000,
      daily: 650_000,
      dailyRemaining: 649_999,
    });
    expect(hubSpotRateLimit.fromHeaders(response.headers)).toEqual({
      remaining: 1,
      resetAfterMs: undefined,
      limit: 2,
      windowMs: 10_000,
    });
    clock.advance(4_000);
    await contacts.get!(ctx, "1001");
    const failure = await readAll(contacts.read(ctx, {})).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(RateLimited);
    expect((failure as RateLimited).retryAfterMs).toBe(6_000);
    clock.advance(6_000);
    expect(await readAll(contacts.read(ctx, {}))).toHaveLength(1);
  });

  it("5xx and hangs are Unavailable", async () => {
    fake.failNext({ kind: "status", status: 503 });
    await expect(readAll(contacts.read(ctx, {}))).rejects.toBeInstanceOf(Unavailable);
    fake.failNext({ kind: "hang" });
    const impatient = contextFor({ accessToken: hubSpotFakeToken }, 100);
    const failure = await readAll(contacts.read(impatient, {})).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(Unavailable);
    expect((failure as Unavailable).message).toContain("timed out");
  });

  it("never quotes a response body into an error: a 404 page, a 200 of another shape, a message off a 404", async () => {
    // What an internal service would answer if a connection pointed at it: none of it may reach the tenant.
    const secret = "INTERNAL-ONLY-BODY: db_password=hunter2";
    const messageOf = (e: unknown) => (e as Error).message;
    // The connector's check is async (MaybeEffect in the type): what it rejects with.
    const failed = (call: unknown) =>
      (call as Promise<void>).then(
        () => undefined,
        (e: unknown) => e,
      );
    server.use(http.get(`${baseUrl}/crm/v3/objects/contacts`, () => HttpResponse.text(secret, { status: 404 })));
    const page404 = await failed(hubspot.check!(ctx));
    expect(page404).toBeInstanceOf(NotFound);
    expect(messageOf(page404)).toBe("HubSpot 404");

    server.use(http.get(`${baseUrl}/crm/v3/objects/contacts`, () => HttpResponse.json({ results: secret })));
    const shape = await readAll(contacts.read(ctx, {})).catch((e: unknown) => e);
    expect(shape).toBeInstanceOf(Unavailable);
    expect(messageOf(shape)).toContain("unexpected response shape at results");
    expect(messageOf(shape)).not.toContain("db_password");

    server.use(
      http.get(`${baseUrl}/crm/v3/objects/contacts`, () =>
        HttpResponse.json({ status: "error", message: secret, category: "OBJECT_NOT_FOUND" }, { status: 404 }),
      ),
    );
    const json404 = await failed(hubspot.check!(ctx));
    expect(messageOf(json404)).toBe("HubSpot 404 OBJECT_NOT_FOUND");
  });
});

describe("OAuth", () => {
  const oauth = {
    clientId: hubSpotFakeOAuthApp.clientId,
    clientSecret: hubSpotFakeOAuthApp.clientSecret,
    refreshToken: hubSpotFakeOAuthApp.refreshToken,
  };

  it("trades the refresh token for an access token and refreshes after a 401", async () => {
    fake.seedContacts(3);
    const oauthCtx = contextFor({ oauth });
    expect(decodeContacts(await readAll(contacts.read(oauthCtx, {})))).toHaveLength(3);
    fake.expireAccessTokens();
    expect(decodeContacts(await readAll(contacts.read(oauthCtx, {})))).toHaveLength(3);
    const calls = fake.requests().map((r) => `${r.method} ${r.path.split("?")[0]} ${r.status}`);
    expect(calls).toEqual([
      "POST /oauth/v1/token 200",
      "GET /crm/v3/objects/contacts 200",
      "GET /crm/v3/objects/contacts 401",
      "POST /oauth/v1/token 200",
      "GET /crm/v3/objects/contacts 200",
    ]);
  });

  it("concurrent calls after an expiry share one refresh", async () => {
    const [one, two, three] = fake.seedContacts(3);
    const oauthCtx = contextFor({ oauth });
    await contacts.get!(oauthCtx, one!.id);
    fake.expireAccessTokens();
    const before = fake.requests().length;
    const found = await Promise.all([one, two, three].map((o) => contacts.get!(oauthCtx, o!.id)));
    expect(found.map((c) => (c as Contact | null)?.id)).toEqual([one!.id, two!.id, three!.id]);
    const afterExpiry = fake.requests().slice(before);
    expect(afterExpiry.filter((r) => r.path === "/oauth/v1/token")).toEqual([
      { method: "POST", path: "/oauth/v1/token", status: 200 },
    ]);
  });

  it("a refused refresh token is AuthExpired", async () => {
    const refused = contextFor({ oauth: { ...oauth, refreshToken: "revoked" } });
    await expect(readAll(contacts.read(refused, {}))).rejects.toBeInstanceOf(AuthExpired);
  });

  it("the config needs a token or OAuth credentials, and keeps secrets redacted", () => {
    expect(() => Schema.decodeUnknownSync(HubSpotConfig)({})).toThrow(/accessToken or oauth/);
    const config = Schema.decodeUnknownSync(HubSpotConfig)({ oauth });
    expect(String(config.oauth?.clientSecret)).not.toContain(oauth.clientSecret);
    expect(config.baseUrl).toBe("https://api.hubapi.com");
  });
});
