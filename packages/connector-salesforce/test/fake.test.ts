import { createHmac } from "node:crypto";
import {
  createManualClock,
  createSalesforceFake,
  parseSoql,
  salesforceFakeOAuthApp,
  salesforceHandlers,
  salesforceId18,
} from "@tandem/testkit";
import { setupServer } from "msw/node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";

/*
 * The testkit's Salesforce fake on its own, over HTTP (MSW): the wire format the connector is
 * tested against must be Salesforce's, so its details are pinned here.
 */

const instanceUrl = "https://wire.my.salesforce.test";
const clock = createManualClock(Date.UTC(2026, 5, 1));
const fake = createSalesforceFake({ instanceUrl, clock });
const server = setupServer(...salesforceHandlers(fake));
beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
beforeEach(() => fake.reset());
afterAll(() => {
  fake.close();
  server.close();
});

const token = async () => {
  const response = await fetch(`${instanceUrl}/services/oauth2/token`, {
    method: "POST",
    body: new URLSearchParams({
      grant_type: "refresh_token",
      client_id: salesforceFakeOAuthApp.clientId,
      client_secret: salesforceFakeOAuthApp.clientSecret,
      refresh_token: salesforceFakeOAuthApp.refreshToken,
    }),
  });
  return (await response.json()) as Record<string, string>;
};

const api = async (path: string, init: RequestInit = {}) => {
  const { access_token } = await token();
  const response = await fetch(`${instanceUrl}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${access_token}`, ...(init.headers as Record<string, string>) },
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === "" ? undefined : JSON.parse(text) };
};

const query = (soql: string, endpoint = "query", headers: Record<string, string> = {}) =>
  api(`/services/data/v60.0/${endpoint}?${new URLSearchParams({ q: soql })}`, { headers });

describe("SOQL subset", () => {
  it("parses the replication shapes, case-insensitively", () => {
    expect(
      parseSoql(
        "select id, lastname from contact where systemmodstamp >= 2024-01-15T00:00:00Z order by SystemModstamp, Id limit 5",
      ),
    ).toEqual({
      query: {
        object: "Contact",
        fields: ["Id", "LastName"],
        where: { field: "SystemModstamp", operator: ">=", value: Date.UTC(2024, 0, 15) },
        orderBy: [
          { field: "SystemModstamp", descending: false },
          { field: "Id", descending: false },
        ],
        limit: 5,
      },
    });
    expect(parseSoql("SELECT Id FROM Account")).toEqual({ query: { object: "Account", fields: ["Id"], orderBy: [] } });
  });

  it("answers what it does not support as Salesforce would", () => {
    const code = (soql: string) => {
      const parsed = parseSoql(soql);
      return "error" in parsed ? parsed.error.errorCode : "ok";
    };
    expect(code("SELECT Id, Foo FROM Contact")).toBe("INVALID_FIELD");
    expect(code("SELECT Id FROM Opportunity")).toBe("INVALID_TYPE");
    expect(code("SELECT Id FROM Contact WHERE SystemModstamp > '2024-01-15T00:00:00Z'")).toBe("INVALID_FIELD");
    expect(code("SELECT Id FROM Contact WHERE Email = 'a@b.c'")).toBe("MALFORMED_QUERY");
    expect(code("SELECT Id FROM Contact WHERE SystemModstamp > 2024-01-15")).toBe("MALFORMED_QUERY");
    expect(code("SELECT FROM Contact")).toBe("MALFORMED_QUERY");
    expect(code("SELECT Id FROM Contact GROUP BY Id")).toBe("MALFORMED_QUERY");
  });
});

describe("REST wire format", () => {
  it("18-character ids carry Salesforce's case checksum", () => {
    expect(salesforceId18("001A0000006Vm9r")).toBe("001A0000006Vm9rIAC");
    expect(salesforceId18("003000000000abc")).not.toBe(salesforceId18("003000000000ABC"));
    expect(fake.seedContacts(1)[0]!.Id).toMatch(/^003[a-zA-Z0-9]{15}$/);
  });

  it("the token endpoint signs id + issued_at with the client secret and names the instance", async () => {
    const answer = await token();
    expect(answer).toMatchObject({ instance_url: instanceUrl, token_type: "Bearer", scope: "refresh_token api" });
    const expected = createHmac("sha256", salesforceFakeOAuthApp.clientSecret)
      .update(answer.id! + answer.issued_at!)
      .digest("base64");
    expect(answer.signature).toBe(expected);
    expect(answer.issued_at).toBe(String(clock.now()));
  });

  it("answers 401 INVALID_SESSION_ID as an error array, and counts usage in Sforce-Limit-Info", async () => {
    const refused = await fetch(`${instanceUrl}/services/data/v60.0/query?q=SELECT+Id+FROM+Contact`);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual([{ message: "Session expired or invalid", errorCode: "INVALID_SESSION_ID" }]);
    const first = await query("SELECT Id FROM Contact");
    const second = await query("SELECT Id FROM Contact");
    expect(first.headers.get("sforce-limit-info")).toBe("api-usage=1/15000");
    expect(second.headers.get("sforce-limit-info")).toBe("api-usage=2/15000");
  });

  it("pages 2,000 by default, no fewer than 200 with Sforce-Query-Options, and expires idle locators", async () => {
    fake.seedContacts(2_300, { spacingMs: 1 });
    const page = await query("SELECT Id, SystemModstamp FROM Contact ORDER BY SystemModstamp, Id");
    expect(page.body).toMatchObject({ totalSize: 2_300, done: false });
    expect(page.body.records).toHaveLength(2_000);
    expect(page.body.records[0]).toEqual({
      attributes: { type: "Contact", url: `/services/data/v60.0/sobjects/Contact/${page.body.records[0].Id}` },
      Id: expect.any(String),
      SystemModstamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/),
    });
    expect(page.body.nextRecordsUrl).toMatch(/^\/services\/data\/v60\.0\/query\/01g\w{15}-2000$/);
    const rest = await api(page.body.nextRecordsUrl);
    expect(rest.body).toMatchObject({ totalSize: 2_300, done: true });
    expect(rest.body.records).toHaveLength(300);
    expect(rest.body.nextRecordsUrl).toBeUndefined();

    const small = await query("SELECT Id FROM Contact", "query", { "sforce-query-options": "batchSize=50" });
    expect(small.body.records).toHaveLength(200);
    clock.advance(15 * 60 * 1000 + 1);
    const expired = await api(small.body.nextRecordsUrl);
    expect(expired.status).toBe(400);
    expect(expired.body).toEqual([{ message: "invalid query locator", errorCode: "INVALID_QUERY_LOCATOR" }]);
  });

  it("creates (201), deletes to the recycle bin, which queryAll and the delete log show for 15 days", async () => {
    const created = await api("/services/data/v60.0/sobjects/Contact", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ LastName: "Bin" }),
    });
    expect(created).toMatchObject({
      status: 201,
      body: { id: expect.stringMatching(/^003/), success: true, errors: [] },
    });
    const id = created.body.id as string;
    clock.advance(60_000);
    expect((await api(`/services/data/v60.0/sobjects/Contact/${id}`, { method: "DELETE" })).status).toBe(204);
    const deletedAt = clock.now();
    clock.advance(120_000);

    expect((await query("SELECT Id FROM Contact")).body.totalSize).toBe(0);
    const all = await query("SELECT Id, IsDeleted FROM Contact", "queryAll");
    expect(all.body.records).toEqual([expect.objectContaining({ Id: id, IsDeleted: true })]);
    expect((await api(`/services/data/v60.0/sobjects/Contact/${id}`)).body).toEqual([
      { message: "entity is deleted", errorCode: "ENTITY_IS_DELETED" },
    ]);

    const window = (start: number, end: number) =>
      api(
        `/services/data/v60.0/sobjects/Contact/deleted/?${new URLSearchParams({
          start: new Date(start).toISOString(),
          end: new Date(end).toISOString(),
        })}`,
      );
    const log = await window(deletedAt - 60_000, clock.now());
    expect(log.body).toMatchObject({
      deletedRecords: [{ id, deletedDate: expect.stringMatching(/\+0000$/) }],
      earliestDateAvailable: expect.stringMatching(/\+0000$/),
    });
    expect((await window(clock.now() - 16 * 24 * 3_600_000, clock.now())).status).toBe(400);

    clock.advance(16 * 24 * 3_600_000);
    expect((await query("SELECT Id FROM Contact", "queryAll")).body.totalSize).toBe(0);
  });

  it("SObject Collections retrieve: rows in the order of ids, null for a missing or deleted one, at most 2,000", async () => {
    const [a, b, c] = fake.seedContacts(3);
    fake.store.delete("Contact", b!.Id);
    const retrieve = (ids: ReadonlyArray<string>, fields?: string) =>
      api(
        `/services/data/v60.0/composite/sobjects/Contact?${new URLSearchParams({
          ids: ids.join(","),
          ...(fields === undefined ? {} : { fields }),
        })}`,
      );
    const rows = await retrieve([c!.Id, b!.Id, "003000000000000AAA", a!.Id], "LastName,SystemModstamp");
    expect(rows.status).toBe(200);
    expect(rows.body).toHaveLength(4);
    expect(rows.body[0]).toMatchObject({ attributes: { type: "Contact" }, Id: c!.Id, LastName: c!.fields.LastName });
    expect(rows.body[0].SystemModstamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$/);
    expect(rows.body.slice(1, 3)).toEqual([null, null]);
    expect(rows.body[3].Id).toBe(a!.Id);
    expect((await retrieve([a!.Id], "Nickname__c")).body[0].errorCode).toBe("INVALID_FIELD");
    expect((await retrieve([a!.Id])).status).toBe(400);
    expect(
      (
        await retrieve(
          Array.from({ length: 2_001 }, () => a!.Id),
          "LastName",
        )
      ).body[0].errorCode,
    ).toBe("EXCEEDED_ID_LIMIT");
  });

  it("validates writes with Salesforce's error codes", async () => {
    const post = (body: unknown) =>
      api("/services/data/v60.0/sobjects/Contact", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const codes = async (body: unknown) => ((await post(body)).body as Array<{ errorCode: string }>)[0]!.errorCode;
    expect(await codes({ FirstName: "No last name" })).toBe("REQUIRED_FIELD_MISSING");
    expect(await codes({ LastName: "X", Email: "nope" })).toBe("INVALID_EMAIL_ADDRESS");
    expect(await codes({ LastName: "X", Nickname__c: "x" })).toBe("INVALID_FIELD");
    expect(await codes({ LastName: "X", SystemModstamp: "2020-01-01T00:00:00Z" })).toBe(
      "INVALID_FIELD_FOR_INSERT_UPDATE",
    );
    expect(await codes({ LastName: "X", AccountId: "001000000000000AAA" })).toBe("INVALID_CROSS_REFERENCE_KEY");
    expect((await api("/services/data/v60.0/sobjects/Contact/003000000000000AAA")).body).toEqual([
      { message: "The requested resource does not exist", errorCode: "NOT_FOUND" },
    ]);
  });
});

describe("conditional writes and batch resources", () => {
  const json = (body: unknown, headers: Record<string, string> = {}) => ({
    body: JSON.stringify(body),
    headers: { "content-type": "application/json", ...headers },
  });

  it("If-Unmodified-Since on a PATCH: 412 and nothing written once LastModifiedDate is later; whole seconds; 400 for a bad date", async () => {
    const [contact] = fake.seedContacts(1);
    const since = new Date(contact!.LastModifiedDate).toUTCString();
    clock.advance(1_500);
    fake.store.update("Contact", contact!.Id, { Phone: "+1 555 0100" });
    const path = `/services/data/v60.0/sobjects/Contact/${contact!.Id}`;
    const stale = await api(path, {
      method: "PATCH",
      ...json({ FirstName: "Late" }, { "if-unmodified-since": since }),
    });
    expect(stale.status).toBe(412);
    expect(stale.body[0]).toMatchObject({ errorCode: "PRECONDITION_FAILED" });
    expect(fake.store.get("Contact", contact!.Id)!.fields.FirstName).toBe(contact!.fields.FirstName);
    const current = new Date(fake.store.get("Contact", contact!.Id)!.LastModifiedDate).toUTCString();
    const fresh = await api(path, {
      method: "PATCH",
      ...json({ FirstName: "Now" }, { "if-unmodified-since": current }),
    });
    expect(fresh.status).toBe(204);
    const bad = await api(path, {
      method: "PATCH",
      ...json({ FirstName: "X" }, { "if-unmodified-since": "yesterday" }),
    });
    expect(bad.status).toBe(400);
  });

  it("collections: create, update and delete answer one { id, success, errors } per record in order, errors with statusCode", async () => {
    const created = await api("/services/data/v60.0/composite/sobjects", {
      method: "POST",
      ...json({
        allOrNone: false,
        records: [
          { attributes: { type: "Contact" }, LastName: "One" },
          { attributes: { type: "Contact" }, FirstName: "No last name" },
          { attributes: { type: "Account" }, Name: "Acme" },
        ],
      }),
    });
    expect(created.status).toBe(200);
    expect(created.body.map((r: { success: boolean }) => r.success)).toEqual([true, false, true]);
    expect(created.body[1]).toEqual({
      success: false,
      errors: [
        {
          statusCode: "REQUIRED_FIELD_MISSING",
          message: "Required fields are missing: [LastName]",
          fields: ["LastName"],
        },
      ],
    });
    const [one, , acme] = created.body as Array<{ id: string }>;
    const updated = await api("/services/data/v60.0/composite/sobjects", {
      method: "PATCH",
      ...json({
        allOrNone: false,
        records: [
          { attributes: { type: "Contact" }, id: one!.id, Email: "bad" },
          { attributes: { type: "Account" }, id: acme!.id, Website: "https://acme.example.com" },
        ],
      }),
    });
    expect(updated.body).toEqual([
      {
        id: one!.id,
        success: false,
        errors: [
          { statusCode: "INVALID_EMAIL_ADDRESS", message: "Email: invalid email address: bad", fields: ["Email"] },
        ],
      },
      { id: acme!.id, success: true, errors: [] },
    ]);
    const retrieved = await api(
      `/services/data/v60.0/composite/sobjects/Account?ids=${acme!.id},001000000000000AAA&fields=Name,Website`,
    );
    expect(retrieved.body).toEqual([
      expect.objectContaining({ Id: acme!.id, Name: "Acme", Website: "https://acme.example.com" }),
      null,
    ]);
    const deleted = await api(`/services/data/v60.0/composite/sobjects?ids=${one!.id},${one!.id}&allOrNone=false`, {
      method: "DELETE",
    });
    expect(deleted.body.map((r: { success: boolean }) => r.success)).toEqual([true, false]);
    expect(deleted.body[1].errors[0].statusCode).toBe("ENTITY_IS_DELETED");
    const tooMany = await api("/services/data/v60.0/composite/sobjects", {
      method: "POST",
      ...json({
        allOrNone: false,
        records: Array.from({ length: 201 }, () => ({ attributes: { type: "Contact" }, LastName: "x" })),
      }),
    });
    expect(tooMany.status).toBe(400);
    expect(fake.requests().filter((r) => r.path.startsWith("/services/data/v60.0/composite/sobjects"))).toHaveLength(5);
  });

  it("composite: each subrequest answered as its own request, If-Unmodified-Since included, one API call for all", async () => {
    const [a, b] = fake.seedContacts(2);
    const versions = [a, b].map((r) => new Date(r!.LastModifiedDate).toUTCString());
    clock.advance(2_000);
    fake.store.update("Contact", b!.Id, { Phone: "+1 555 0199" });
    const usage = fake.apiUsage();
    const answer = await api("/services/data/v60.0/composite", {
      method: "POST",
      ...json({
        allOrNone: false,
        compositeRequest: [a, b].map((r, i) => ({
          method: "PATCH",
          url: `/services/data/v60.0/sobjects/Contact/${r!.Id}`,
          referenceId: `r${i}`,
          body: { FirstName: `Composite ${i}` },
          httpHeaders: { "If-Unmodified-Since": versions[i]! },
        })),
      }),
    });
    expect(answer.status).toBe(200);
    expect(
      answer.body.compositeResponse.map((r: { httpStatusCode: number; referenceId: string }) => [
        r.referenceId,
        r.httpStatusCode,
      ]),
    ).toEqual([
      ["r0", 204],
      ["r1", 412],
    ]);
    expect(answer.body.compositeResponse[1].body[0].errorCode).toBe("PRECONDITION_FAILED");
    expect(fake.store.get("Contact", a!.Id)!.fields.FirstName).toBe("Composite 0");
    expect(fake.store.get("Contact", b!.Id)!.fields.FirstName).toBe(b!.fields.FirstName);
    // Two subrequests, one API call (token requests are not counted).
    expect(fake.apiUsage() - usage).toBe(1);
  });
});
