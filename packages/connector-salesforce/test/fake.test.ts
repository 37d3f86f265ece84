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

  it("SObject Collections retrieve: rows in the order of ids, null for a missing or deleted one, at most 200", async () => {
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
          Array.from({ length: 201 }, () => a!.Id),
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
