import { createHash, createHmac } from "node:crypto";
import { HttpResponse, http } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createHubSpotFake,
  createHubSpotWebhookEmitter,
  createManualClock,
  hubSpotFakeOAuthApp,
  hubSpotFakeToken,
  hubSpotHandlers,
  hubSpotSignatureHeaders,
  signHubSpotV1,
  signHubSpotV2,
  signHubSpotV3,
} from "../src/index.ts";

const baseUrl = "https://hubspot.fake";
const clock = createManualClock(Date.UTC(2026, 0, 1));
const fake = createHubSpotFake({ baseUrl, clock });
const server = setupServer(...hubSpotHandlers(fake));

beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
beforeEach(() => fake.reset());
afterEach(() => server.resetHandlers());
afterAll(() => {
  fake.close();
  server.close();
});

const call = async (method: string, path: string, body?: unknown, token = hubSpotFakeToken) => {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === "" ? undefined : JSON.parse(text) };
};

describe("list", () => {
  it("pages by `after` with limit default 10, max 100", async () => {
    fake.seedContacts(25);
    const first = await call("GET", "/crm/v3/objects/contacts");
    expect(first.status).toBe(200);
    expect(first.body.results).toHaveLength(10);
    expect(Object.keys(first.body.results[0].properties).sort()).toEqual(
      ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"].sort(),
    );
    const after = first.body.paging.next.after;
    const last = await call("GET", `/crm/v3/objects/contacts?limit=100&after=${after}&properties=phone`);
    expect(last.body.results).toHaveLength(15);
    expect(last.body.paging).toBeUndefined();
    expect(last.body.results[0].properties.phone).toMatch(/^\+1555/);
    expect((await call("GET", "/crm/v3/objects/contacts?limit=101")).body.category).toBe("VALIDATION_ERROR");
  });

  it("lists archived objects only with archived=true, with archivedAt", async () => {
    const [one] = fake.seedCompanies(3);
    clock.advance(1_000);
    expect((await call("DELETE", `/crm/v3/objects/companies/${one!.id}`)).status).toBe(204);
    const live = await call("GET", "/crm/v3/objects/companies");
    const archived = await call("GET", "/crm/v3/objects/companies?archived=true");
    expect(live.body.results.map((o: { id: string }) => o.id)).not.toContain(one!.id);
    expect(archived.body.results).toEqual([
      expect.objectContaining({ id: one!.id, archived: true, archivedAt: new Date(clock.now()).toISOString() }),
    ]);
    expect((await call("GET", `/crm/v3/objects/companies/${one!.id}`)).status).toBe(404);
  });
});

describe("search", () => {
  const search = (body: unknown, type = "contacts") => call("POST", `/crm/v3/objects/${type}/search`, body);

  it("filters GT/GTE/EQ on the modification date, sorts ascending, pages up to 200", async () => {
    const seeded = fake.seedContacts(300, { spacingMs: 1_000 });
    const pivot = seeded[100]!.updatedAt;
    const filter = (operator: string) => ({
      filterGroups: [{ filters: [{ propertyName: "lastmodifieddate", operator, value: String(pivot) }] }],
      sorts: [{ propertyName: "lastmodifieddate", direction: "ASCENDING" }],
      limit: 200,
    });
    const gte = await search(filter("GTE"));
    expect(gte.body.total).toBe(200);
    expect(gte.body.results[0].id).toBe(seeded[100]!.id);
    expect((await search(filter("GT"))).body.total).toBe(199);
    const eq = await search({
      ...filter("EQ"),
      filterGroups: [
        { filters: [{ propertyName: "lastmodifieddate", operator: "EQ", value: new Date(pivot).toISOString() }] },
      ],
    });
    expect(eq.body.results.map((o: { id: string }) => o.id)).toEqual([seeded[100]!.id]);
    expect((await search({ limit: 201 })).status).toBe(400);
    const descending = await search({
      sorts: [{ propertyName: "lastmodifieddate", direction: "DESCENDING" }],
      limit: 1,
    });
    expect(descending.body.results[0].id).toBe(seeded[299]!.id);
    expect(descending.body.paging.next.after).toBe("1");
  });

  it("uses hs_lastmodifieddate for companies and never returns archived objects", async () => {
    const [first] = fake.seedCompanies(2);
    fake.store.archive("companies", first!.id);
    const result = await search(
      { filterGroups: [{ filters: [{ propertyName: "hs_lastmodifieddate", operator: "GTE", value: "0" }] }] },
      "companies",
    );
    expect(result.body.total).toBe(1);
  });

  it("answers 400 when paging past 10,000 results", async () => {
    fake.seedContacts(10_050, { spacingMs: 1 });
    const at9800 = await search({ limit: 200, after: "9800" });
    expect(at9800.body.results).toHaveLength(200);
    expect(at9800.body.paging.next.after).toBe("10000");
    const past = await search({ limit: 200, after: "10000" });
    expect(past.status).toBe(400);
    expect(past.body).toMatchObject({ status: "error", category: "VALIDATION_ERROR" });
    expect(typeof past.body.correlationId).toBe("string");
  });

  it("answers a delta's search from the modification-time index exactly as a scan of the store", async () => {
    // Ties in modification time, archived objects, restored and updated ones, and the search lag.
    const seeded = fake.seedContacts(400, { spacingMs: 500 });
    for (const object of seeded.filter((_, i) => i % 7 === 0)) fake.store.archive("contacts", object.id);
    clock.advance(1_000);
    for (const object of seeded.filter((_, i) => i % 11 === 0))
      fake.store.update("contacts", object.id, { phone: "1" });
    fake.store.restore("contacts", seeded[14]!.id);
    fake.knobs.searchLagMs = 200;
    clock.advance(100);
    fake.store.update("contacts", seeded[3]!.id, { phone: "2" });
    const sorted = [{ propertyName: "lastmodifieddate", direction: "ASCENDING" }];
    const bound = (operator: string, at: number) => ({ propertyName: "lastmodifieddate", operator, value: String(at) });
    // Another filter on the group makes the fake scan and sort the store instead.
    const scanned = { propertyName: "email", operator: "HAS_PROPERTY" };
    const pivot = seeded[200]!.updatedAt;
    const windows = [
      [bound("GTE", pivot)],
      [bound("GT", pivot)],
      [bound("GTE", 0)],
      [bound("GT", pivot), bound("LTE", pivot + 50_000)],
      [bound("EQ", seeded[1]!.updatedAt)],
      [bound("LT", pivot)],
    ];
    const ids = async (filters: ReadonlyArray<unknown>, after?: string) => {
      const page = await search({ filterGroups: [{ filters }], sorts: sorted, limit: 200, after });
      return {
        total: page.body.total,
        ids: page.body.results.map((o: { id: string }) => o.id),
        next: page.body.paging,
      };
    };
    for (const filters of windows) {
      for (const after of [undefined, "150"]) {
        const indexed = await ids(filters, after);
        expect(indexed).toEqual(await ids([...filters, scanned], after));
        expect(indexed.total).toBeGreaterThan(0);
      }
    }
  });

  it("applies one sorting rule a search, as HubSpot documents; a second is a 400", async () => {
    fake.seedContacts(3);
    const two = await search({
      sorts: [
        { propertyName: "lastmodifieddate", direction: "ASCENDING" },
        { propertyName: "hs_object_id", direction: "ASCENDING" },
      ],
    });
    expect(two.status).toBe(400);
    expect(two.body.category).toBe("VALIDATION_ERROR");
  });

  it("`after` is an offset into the results as they are now: an edit between two pages shifts the next", async () => {
    const seeded = fake.seedContacts(10, { spacingMs: 1_000 });
    const query = {
      filterGroups: [{ filters: [{ propertyName: "lastmodifieddate", operator: "GTE", value: "0" }] }],
      sorts: [{ propertyName: "lastmodifieddate", direction: "ASCENDING" }],
      limit: 4,
    };
    const first = await search(query);
    expect(first.body.results.map((o: { id: string }) => o.id)).toEqual(seeded.slice(0, 4).map((o) => o.id));
    clock.advance(1_000);
    fake.store.update("contacts", seeded[1]!.id, { phone: "2" }); // moves to the end of the order
    const second = await search({ ...query, after: first.body.paging.next.after });
    // seeded[4] is now at offset 3, on the page already read: an offset reader never sees it.
    expect(second.body.results.map((o: { id: string }) => o.id)).toEqual(seeded.slice(5, 9).map((o) => o.id));
  });

  it("orders objects tied on the sorted property by id, descending when the knob says so", async () => {
    const seeded = fake.seedContacts(5, { spacingMs: 0 });
    const query = {
      filterGroups: [{ filters: [{ propertyName: "lastmodifieddate", operator: "GTE", value: "0" }] }],
      sorts: [{ propertyName: "lastmodifieddate", direction: "ASCENDING" }],
    };
    const ids = seeded.map((o) => o.id);
    expect((await search(query)).body.results.map((o: { id: string }) => o.id)).toEqual(ids);
    fake.knobs.searchTieOrder = "id-descending";
    expect((await search(query)).body.results.map((o: { id: string }) => o.id)).toEqual([...ids].reverse());
    // Without a sort, still in creation order; a sort by id is unaffected.
    expect((await search({})).body.results.map((o: { id: string }) => o.id)).toEqual(ids);
    const byId = await search({ ...query, sorts: [{ propertyName: "hs_object_id", direction: "ASCENDING" }] });
    expect(byId.body.results.map((o: { id: string }) => o.id)).toEqual(ids);
  });

  it("hides objects changed within the search lag", async () => {
    fake.knobs.searchLagMs = 3_000;
    fake.seedContacts(2, { endAt: clock.now() - 10_000 });
    fake.store.create("contacts", { email: "fresh@example.com" });
    expect((await search({})).body.total).toBe(2);
    clock.advance(3_001);
    expect((await search({})).body.total).toBe(3);
  });

  it("never returns an object hidden from search, which list, get and batch read still serve current", async () => {
    const [hidden, other] = fake.seedContacts(3, { endAt: clock.now() - 10_000 });
    fake.hideFromSearch(hidden!.id);
    fake.store.update("contacts", hidden!.id, { lifecyclestage: "customer" });
    const ids = async () => (await search({})).body.results.map((r: { id: string }) => r.id);
    expect(await ids()).not.toContain(hidden!.id);
    expect(await ids()).toContain(other!.id);
    const listed = await call("GET", "/crm/v3/objects/contacts?properties=lastmodifieddate");
    const entry = listed.body.results.find((r: { id: string }) => r.id === hidden!.id);
    expect(entry.properties.lastmodifieddate).toBe(new Date(hidden!.updatedAt).toISOString());
    expect(
      (await call("GET", `/crm/v3/objects/contacts/${hidden!.id}?properties=lifecyclestage`)).body.properties,
    ).toMatchObject({ lifecyclestage: "customer" });
    const read = await call("POST", "/crm/v3/objects/contacts/batch/read", {
      inputs: [{ id: hidden!.id }],
      properties: ["lifecyclestage"],
    });
    expect(read.body.results[0].properties.lifecyclestage).toBe("customer");
    fake.showInSearch(hidden!.id);
    expect(await ids()).toContain(hidden!.id);
  });
});

describe("writes", () => {
  it("create 201, duplicate email 409, invalid 400, patch 200, unknown id 404", async () => {
    const created = await call("POST", "/crm/v3/objects/contacts", { properties: { email: "a@example.com" } });
    expect(created.status).toBe(201);
    expect(created.body.id).toMatch(/^\d+$/);
    const duplicate = await call("POST", "/crm/v3/objects/contacts", { properties: { email: "A@example.com" } });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body).toMatchObject({
      status: "error",
      category: "CONFLICT",
      message: `Contact already exists. Existing ID: ${created.body.id}`,
    });
    const invalid = await call("POST", "/crm/v3/objects/contacts", { properties: { nope: "x", createdate: "1" } });
    expect(invalid.status).toBe(400);
    expect(invalid.body.category).toBe("VALIDATION_ERROR");
    expect(invalid.body.errors.map((e: { code: string }) => e.code)).toEqual([
      "PROPERTY_DOESNT_EXIST",
      "READ_ONLY_VALUE",
    ]);
    clock.advance(10);
    const patched = await call("PATCH", `/crm/v3/objects/contacts/${created.body.id}`, {
      properties: { firstname: "Al" },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.properties.firstname).toBe("Al");
    expect(patched.body.updatedAt).toBe(new Date(clock.now()).toISOString());
    expect((await call("PATCH", "/crm/v3/objects/contacts/999", { properties: {} })).status).toBe(404);
  });

  it("batch create is all or nothing: one existing email answers one 409 naming the existing id, and nothing is created", async () => {
    const [existing] = fake.seedContacts(1);
    const refused = await call("POST", "/crm/v3/objects/contacts/batch/create", {
      inputs: [
        { properties: { email: "b@example.com" } },
        { properties: { email: existing!.properties.email!.toUpperCase() } },
        { properties: { email: "c@example.com" } },
      ],
    });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({
      status: "error",
      category: "CONFLICT",
      message: `Contact already exists. Existing ID: ${existing!.id}`,
    });
    expect(refused.body.results).toBeUndefined();
    expect(fake.live("contacts")).toHaveLength(1);
    const invalid = await call("POST", "/crm/v3/objects/contacts/batch/create", {
      inputs: [{ properties: { email: "d@example.com" } }, { properties: { email: "not an email" } }],
    });
    expect(invalid.status).toBe(400);
    expect(invalid.body).toMatchObject({ status: "error", category: "VALIDATION_ERROR" });
    expect(fake.live("contacts")).toHaveLength(1);
    const created = await call("POST", "/crm/v3/objects/contacts/batch/create", {
      inputs: [{ properties: { email: "b@example.com" } }, { properties: { email: "c@example.com" } }],
    });
    expect(created.status).toBe(201);
    expect(created.body.results.map((r: { properties: { email: string } }) => r.properties.email)).toEqual([
      "b@example.com",
      "c@example.com",
    ]);
  });

  it("batches: 100 inputs at most, 207 with errors[] on partial failure, upsert by email, archive 204", async () => {
    const [existing] = fake.seedContacts(1);
    const tooMany = await call("POST", "/crm/v3/objects/contacts/batch/create", {
      inputs: Array.from({ length: 101 }, () => ({ properties: {} })),
    });
    expect(tooMany.status).toBe(400);
    const partial = await call("POST", "/crm/v3/objects/contacts/batch/update", {
      inputs: [
        { id: existing!.id, properties: { firstname: "B" } },
        { id: existing!.id === "999" ? "998" : "999", properties: { firstname: "C" } },
      ],
    });
    expect(partial.status).toBe(207);
    expect(partial.body.results).toHaveLength(1);
    expect(partial.body.numErrors).toBe(1);
    expect(partial.body.errors[0]).toMatchObject({ status: "error", category: "OBJECT_NOT_FOUND" });
    const upsert = await call("POST", "/crm/v3/objects/contacts/batch/upsert", {
      inputs: [
        { id: existing!.properties.email, idProperty: "email", properties: { firstname: "Up" } },
        { id: "c@example.com", idProperty: "email", properties: { firstname: "New" } },
      ],
    });
    expect(upsert.status).toBe(200);
    expect(upsert.body.results.map((r: { id: string; new: boolean }) => [r.id === existing!.id, r.new])).toEqual([
      [true, false],
      [false, true],
    ]);
    const read = await call("POST", "/crm/v3/objects/contacts/batch/read", {
      inputs: [{ id: existing!.id }, { id: "1" }],
    });
    expect(read.status).toBe(207);
    expect(read.body.errors[0]).toMatchObject({ category: "OBJECT_NOT_FOUND", context: { ids: ["1"] } });
    const update = await call("POST", "/crm/v3/objects/contacts/batch/update", {
      inputs: [{ id: existing!.id, properties: { lastname: "B" } }],
    });
    expect(update.status).toBe(200);
    expect(
      (await call("POST", "/crm/v3/objects/contacts/batch/archive", { inputs: [{ id: existing!.id }] })).status,
    ).toBe(204);
    expect(fake.store.get("contacts", existing!.id)?.archived).toBe(true);
  });
});

describe("auth, limits and faults", () => {
  it("401 for a bad token, in HubSpot's error shape", async () => {
    const refused = await call("GET", "/crm/v3/objects/contacts", undefined, "wrong");
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ status: "error", category: "INVALID_AUTHENTICATION" });
  });

  it("OAuth: the refresh grant issues access tokens that expire", async () => {
    const form = (refreshToken: string) =>
      fetch(`${baseUrl}/oauth/v1/token`, {
        method: "POST",
        body: new URLSearchParams({
          grant_type: "refresh_token",
          client_id: hubSpotFakeOAuthApp.clientId,
          client_secret: hubSpotFakeOAuthApp.clientSecret,
          refresh_token: refreshToken,
        }),
      });
    const bad = await form("nope");
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { status: string }).status).toBe("BAD_REFRESH_TOKEN");
    const granted = (await (await form(hubSpotFakeOAuthApp.refreshToken)).json()) as { access_token: string };
    expect(granted).toMatchObject({ token_type: "bearer", expires_in: 1800 });
    expect((await call("GET", "/crm/v3/objects/contacts", undefined, granted.access_token)).status).toBe(200);
    clock.advance(1_800_000);
    const expired = await call("GET", "/crm/v3/objects/contacts", undefined, granted.access_token);
    expect(expired.status).toBe(401);
    expect(expired.body.category).toBe("EXPIRED_AUTHENTICATION");
  });

  it("a 10-second rolling window: 429 with HubSpot's body, rate-limit headers and Retry-After", async () => {
    fake.knobs.rateLimit = { max: 3, intervalMs: 10_000 };
    const statuses: Array<number> = [];
    let last: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 3; i++) {
      last = await call("GET", "/crm/v3/objects/contacts");
      statuses.push(last.status);
      clock.advance(1_000);
    }
    expect(last!.headers.get("x-hubspot-ratelimit-remaining")).toBe("0");
    expect(last!.headers.get("x-hubspot-ratelimit-interval-milliseconds")).toBe("10000");
    const limited = await call("GET", "/crm/v3/objects/contacts");
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ category: "RATE_LIMITS", policyName: "TEN_SECONDLY_ROLLING" });
    expect(limited.headers.get("retry-after")).toBe("7");
    clock.advance(7_000);
    expect((await call("GET", "/crm/v3/objects/contacts")).status).toBe(200);
    expect(statuses).toEqual([200, 200, 200]);
  });

  it("search's per-second limit and the daily quota answer 429 with their policies", async () => {
    fake.knobs.searchPerSecond = 2;
    const searches = [];
    for (let i = 0; i < 3; i++) searches.push(await call("POST", "/crm/v3/objects/contacts/search", {}));
    expect(searches.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(searches[2]!.body).toMatchObject({
      policyName: "SECONDLY",
      message: "You have reached your secondly limit.",
    });
    clock.advance(1_000);
    expect((await call("POST", "/crm/v3/objects/contacts/search", {})).status).toBe(200);

    fake.knobs.dailyLimit = 5;
    const day = [];
    for (let i = 0; i < 2; i++) day.push(await call("GET", "/crm/v3/objects/contacts"));
    expect(day.map((r) => r.status)).toEqual([200, 429]);
    expect(day[0]!.headers.get("x-hubspot-ratelimit-daily-remaining")).toBe("0");
    expect(day[1]!.body.policyName).toBe("DAILY");
    expect(Number(day[1]!.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("queued and random faults: 5xx, hangs, malformed records", async () => {
    fake.seedContacts(50);
    fake.failNext({ kind: "status", status: 502 }, { kind: "rateLimit", retryAfterSeconds: 2 });
    expect((await call("GET", "/crm/v3/objects/contacts")).status).toBe(502);
    const limited = await call("GET", "/crm/v3/objects/contacts");
    expect([limited.status, limited.headers.get("retry-after")]).toEqual([429, "2"]);

    fake.failNext({ kind: "hang" });
    const hung = await fetch(`${baseUrl}/crm/v3/objects/contacts`, {
      headers: { authorization: `Bearer ${hubSpotFakeToken}` },
      signal: AbortSignal.timeout(50),
    }).catch((e: unknown) => e);
    expect(hung).toBeInstanceOf(Error);

    fake.knobs.serverErrorRate = 0.5;
    const statuses = await Promise.all(
      Array.from({ length: 40 }, () => call("GET", "/crm/v3/objects/contacts?limit=1")),
    );
    const failed = statuses.filter((s) => s.status >= 500).length;
    expect(failed).toBeGreaterThan(5);
    expect(failed).toBeLessThan(35);
    fake.knobs.serverErrorRate = 0;

    fake.knobs.malformedRate = 1;
    const page = await call("GET", "/crm/v3/objects/contacts?limit=5");
    for (const record of page.body.results) {
      const broken =
        record.updatedAt === "last tuesday" ||
        record.properties === null ||
        Object.values(record.properties).some((v) => typeof v === "number");
      expect(broken).toBe(true);
      expect(record.id).toMatch(/^\d+$/);
    }
  });

  it("latency knob delays answers", async () => {
    fake.knobs.latencyMs = 60;
    const started = performance.now();
    await call("GET", "/crm/v3/objects/contacts");
    expect(performance.now() - started).toBeGreaterThanOrEqual(55);
  });

  it("MSW refuses requests the fake does not own", async () => {
    await expect(fetch("https://elsewhere.test/")).rejects.toThrow();
  });
});

describe("store", () => {
  it("merge keeps the primary and removes the merged id; restore brings an archived object back", () => {
    const [a, b] = fake.seedContacts(2);
    fake.store.update("contacts", a!.id, { phone: "" });
    fake.store.merge("contacts", a!.id, b!.id);
    expect(fake.store.get("contacts", b!.id)).toBeUndefined();
    expect(fake.store.get("contacts", a!.id)?.properties.phone).toBe(b!.properties.phone);
    fake.store.archive("contacts", a!.id);
    expect(fake.live("contacts")).toHaveLength(0);
    expect("object" in fake.store.restore("contacts", a!.id)).toBe(true);
    expect(fake.live("contacts")).toHaveLength(1);
  });

  it("churn changes objects at the clock's time", () => {
    fake.seedContacts(20, { endAt: clock.now() - 60_000 });
    clock.advance(1_000);
    fake.churn("contacts", { updates: 3, creates: 2, archives: 1 });
    const touched = fake.store.all("contacts").filter((o) => o.updatedAt === clock.now());
    expect(touched.length).toBeGreaterThanOrEqual(4);
    expect(fake.archived("contacts")).toHaveLength(1);
    expect(fake.store.all("contacts")).toHaveLength(22);
  });
});

describe("webhook signatures", () => {
  it("match independent computations and HubSpot's published v1 example", () => {
    const body =
      '[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]';
    const clientSecret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    expect(signHubSpotV1({ clientSecret, body })).toBe(
      "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de",
    );
    const uri = "https://www.example.com/webhook_uri";
    expect(signHubSpotV2({ clientSecret, method: "GET", uri, body: "" })).toBe(
      "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e",
    );
    const timestamp = 1_700_000_000_000;
    const v3 = createHmac("sha256", clientSecret).update(`POST${uri}${body}${timestamp}`).digest("base64");
    expect(signHubSpotV3({ clientSecret, method: "POST", uri, body, timestamp })).toBe(v3);
    const headers = hubSpotSignatureHeaders({
      clientSecret,
      method: "POST",
      uri,
      body,
      timestamp,
      versions: ["v2", "v3"],
    });
    expect(headers).toEqual({
      "x-hubspot-signature": createHash("sha256").update(`${clientSecret}POST${uri}${body}`).digest("hex"),
      "x-hubspot-signature-version": "v2",
      "x-hubspot-signature-v3": v3,
      "x-hubspot-request-timestamp": String(timestamp),
    });
  });
});

describe("webhook emitter", () => {
  it("queues store changes, signs deliveries, and retries failed ones with a higher attemptNumber", async () => {
    const target = "https://receiver.test/hooks";
    const bodies: Array<{ status: number; body: Array<Record<string, unknown>>; headers: Headers }> = [];
    let answer = 500;
    server.use(
      http.post(target, async ({ request }) => {
        bodies.push({ status: answer, body: JSON.parse(await request.text()), headers: request.headers });
        return new HttpResponse(null, { status: answer });
      }),
    );
    const emitter = createHubSpotWebhookEmitter({
      store: fake.store,
      targetUrl: target,
      clientSecret: "s",
      now: () => 42,
    });
    const created = fake.store.create("companies", { name: "Initech" });
    expect(emitter.pending()).toHaveLength(1);
    const [failed] = await emitter.flush();
    expect(failed!.status).toBe(500);
    expect(emitter.pending().map((e) => e.attemptNumber)).toEqual([1]);
    answer = 204;
    await emitter.flush();
    expect(emitter.pending()).toHaveLength(0);
    const delivered = bodies[1]!;
    expect(delivered.body[0]).toMatchObject({
      subscriptionType: "company.creation",
      objectId: Number("object" in created ? created.object.id : NaN),
      attemptNumber: 1,
    });
    const raw = JSON.stringify(delivered.body);
    expect(delivered.headers.get("x-hubspot-signature")).toBe(createHash("sha256").update(`s${raw}`).digest("hex"));
    expect(delivered.headers.get("x-hubspot-signature-v3")).toBe(
      createHmac("sha256", "s").update(`POST${target}${raw}42`).digest("base64"),
    );
    emitter.close();
  });
});
