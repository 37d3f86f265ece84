import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

/**
 * Input no procedure can take, sent over real HTTP to the procedures it used to break: each must
 * answer 4xx (it answered 500, logged as DatabaseUnavailable, or 400 with a stack trace), with a
 * bounded body that names the field without quoting the value.
 */

interface BadCall {
  readonly name: string;
  readonly procedure: string;
  readonly type: "query" | "mutation";
  readonly as: "tenant" | "admin";
  /** The input as JSON text: deep nesting is written out, not built as objects. */
  readonly input: (ids: { readonly connectionId: string }) => string;
  /** Text from the bad value that the answer must not contain. */
  readonly marker: string;
}

const nested = (depth: number, leaf: string) => `${"[".repeat(depth)}${leaf}${"]".repeat(depth)}`;
const json = (value: unknown) => JSON.stringify(value);
const UUID = "00000000-0000-4000-8000-000000000000";
const SECRET = "pat-na1-REJECTED-SECRET-0123456789";
const big = "BIGVALUE".repeat(250_000); // 2 MB
const megabyteId = `MBID${randomBytes(500_000).toString("hex")}`;
const scope = (connectionId: string) => ({ connectionId, entity: "contacts" });

const calls: ReadonlyArray<BadCall> = [
  // NUL characters in text fields
  ...(
    [
      ["tenants.create", "mutation", "admin", () => ({ name: "a\u0000NULMARK1" })],
      [
        "connections.create",
        "mutation",
        "tenant",
        () => ({ connector: "hubspot", name: "a\u0000NULMARK1", config: { accessToken: "t" } }),
      ],
      ["records.get", "query", "tenant", (c: string) => ({ ...scope(c), externalId: "a\u0000NULMARK1" })],
      [
        "records.update",
        "mutation",
        "tenant",
        (c: string) => ({ ...scope(c), externalId: "x1", fields: { note: "a\u0000NULMARK1" } }),
      ],
      [
        "sync.push",
        "mutation",
        "tenant",
        (c: string) => ({ ...scope(c), changes: [{ externalId: "x2", fields: { note: "a\u0000NULMARK1" } }] }),
      ],
      ["jobs.list", "query", "tenant", () => ({ kind: "a\u0000NULMARK1" })],
    ] as const
  ).map(([procedure, type, as, input]) => ({
    name: `NUL in text: ${procedure}`,
    procedure,
    type,
    as,
    input: ({ connectionId }: { connectionId: string }) => json(input(connectionId)),
    marker: "NULMARK1",
  })),
  // Lone surrogates in record fields (and their keys) and ids
  {
    name: "lone surrogate in a field value: records.update",
    procedure: "records.update",
    type: "mutation",
    as: "tenant",
    input: ({ connectionId }) => json({ ...scope(connectionId), externalId: "x3", fields: { note: "\ud800SURMARK" } }),
    marker: "SURMARK",
  },
  {
    name: "lone surrogate in a field key: sync.push",
    procedure: "sync.push",
    type: "mutation",
    as: "tenant",
    input: ({ connectionId }) =>
      json({ ...scope(connectionId), changes: [{ externalId: "x4", fields: { "\udc00SURMARK": 1 } }] }),
    marker: "SURMARK",
  },
  {
    name: "lone surrogate in an external id: records.get",
    procedure: "records.get",
    type: "query",
    as: "tenant",
    input: ({ connectionId }) => json({ ...scope(connectionId), externalId: "\ud800SURMARK" }),
    marker: "SURMARK",
  },
  // Cursors beyond bigint
  ...(
    [
      ["records.list", (c: string) => scope(c)],
      ["conflicts.list", () => ({})],
      ["webhooks.deliveries", () => ({})],
      ["alerts.list", () => ({})],
    ] as const
  ).map(([procedure, base]) => ({
    name: `cursor beyond bigint: ${procedure}`,
    procedure,
    type: "query" as const,
    as: "tenant" as const,
    input: ({ connectionId }: { connectionId: string }) =>
      json({ ...base(connectionId), cursor: "98765432109876543210" }),
    marker: "98765432109876543210",
  })),
  // Dates outside PostgreSQL's range
  {
    name: "date before year 1: records.list",
    procedure: "records.list",
    type: "query",
    as: "tenant",
    input: ({ connectionId }) => json({ ...scope(connectionId), modifiedAfter: "-271000-01-01T00:00:00.000Z" }),
    marker: "271000",
  },
  {
    name: "date before year 1: sync.metrics",
    procedure: "sync.metrics",
    type: "query",
    as: "tenant",
    input: () => json({ startDate: "-271000-01-01", endDate: "2024-01-01" }),
    marker: "271000",
  },
  // A 1 MB external id (too large for its index)
  {
    name: "1 MB externalId: records.update",
    procedure: "records.update",
    type: "mutation",
    as: "tenant",
    input: ({ connectionId }) => json({ ...scope(connectionId), externalId: megabyteId, fields: { a: 1 } }),
    marker: megabyteId.slice(0, 40),
  },
  {
    name: "1 MB externalId: sync.push",
    procedure: "sync.push",
    type: "mutation",
    as: "tenant",
    input: ({ connectionId }) => json({ ...scope(connectionId), changes: [{ externalId: megabyteId, fields: {} }] }),
    marker: megabyteId.slice(0, 40),
  },
  // Input nested 2,500 levels deep
  ...(
    [
      [
        "records.update",
        "mutation",
        "tenant",
        (c: string, deep: string) =>
          `{"connectionId":"${c}","entity":"contacts","externalId":"x5","fields":{"a":${deep}}}`,
      ],
      [
        "sync.push",
        "mutation",
        "tenant",
        (c: string, deep: string) =>
          `{"connectionId":"${c}","entity":"contacts","changes":[{"externalId":"x6","fields":{"a":${deep}}}]}`,
      ],
      [
        "connections.create",
        "mutation",
        "tenant",
        (_: string, deep: string) => `{"connector":"hubspot","name":"deep","config":{"accessToken":${deep}}}`,
      ],
      [
        "conflicts.resolve",
        "mutation",
        "tenant",
        (_: string, deep: string) => `{"id":"${UUID}","resolution":{"choose":"values","values":{"a":${deep}}}}`,
      ],
      ["tenants.create", "mutation", "admin", (_: string, deep: string) => `{"name":${deep}}`],
      [
        "records.list",
        "query",
        "tenant",
        (c: string, deep: string) => `{"connectionId":"${c}","entity":"contacts","cursor":${deep}}`,
      ],
    ] as const
  ).map(([procedure, type, as, input]) => ({
    name: `nested 2,500 deep: ${procedure}`,
    procedure,
    type,
    as,
    input: ({ connectionId }: { connectionId: string }) => input(connectionId, nested(2_500, '"DEEPMARK"')),
    marker: "DEEPMARK",
  })),
  // Wrong types carrying big values, and a secret in a rejected config
  {
    name: "a 2 MB string for the changes array: sync.push",
    procedure: "sync.push",
    type: "mutation",
    as: "tenant",
    input: ({ connectionId }) => json({ ...scope(connectionId), changes: big }),
    marker: "BIGVALUEBIGVALUE",
  },
  {
    name: "1,000 changes, each with a 10 kB string for its fields: sync.push",
    procedure: "sync.push",
    type: "mutation",
    as: "tenant",
    input: ({ connectionId }) =>
      json({
        ...scope(connectionId),
        changes: Array.from({ length: 1_000 }, (_, i) => ({ externalId: `w${i}`, fields: big.slice(0, 10_000) })),
      }),
    marker: "BIGVALUEBIGVALUE",
  },
  {
    name: "a 2 MB string for a record's fields: records.update",
    procedure: "records.update",
    type: "mutation",
    as: "tenant",
    input: ({ connectionId }) => json({ ...scope(connectionId), externalId: "x7", fields: big }),
    marker: "BIGVALUEBIGVALUE",
  },
  {
    name: "a secret of the wrong type in a connection config: connections.create",
    procedure: "connections.create",
    type: "mutation",
    as: "tenant",
    input: () =>
      json({
        connector: "hubspot",
        name: "leaky",
        config: { oauth: { clientId: "id", clientSecret: [SECRET], refreshToken: "r" } },
      }),
    marker: "REJECTED-SECRET",
  },
];

/** Stack frames or our file paths, in any form an answer could carry them. */
const internals = /\bat \S+ \(|\bat file:|node_modules|\/work\/|\.ts:\d+|\.js:\d+/;

describe("bad input over the tRPC API", () => {
  let t: TestServer;
  let tenantKey: string;
  let connectionId: string;
  const logLines: Array<string> = [];

  beforeAll(async () => {
    // Every log line the server writes, warnings included, to check how the refusals were logged.
    vi.spyOn(console, "log").mockImplementation((...args: Array<unknown>) => {
      logLines.push(args.map(String).join(" "));
    });
    t = await startTestServer("postgres", { LOG_LEVEL: "warning" });
    const admin = t.client(t.adminKey);
    const tenant = await admin.tenants.create.mutate({ name: "bad input" });
    tenantKey = (await admin.apiKeys.create.mutate({ tenantId: tenant.id, name: "k" })).key;
    const connection = await t.client(tenantKey).connections.create.mutate({
      connector: "hubspot",
      name: "crm",
      config: { accessToken: "t", baseUrl: "http://127.0.0.1:9/hubspot" },
    });
    connectionId = connection.id;
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    vi.restoreAllMocks();
  });

  const send = (call: BadCall) => {
    const key = call.as === "admin" ? t.adminKey : tenantKey;
    const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
    const input = call.input({ connectionId });
    return call.type === "query"
      ? fetch(`${t.server.url}/trpc/${call.procedure}?input=${encodeURIComponent(input)}`, { headers })
      : fetch(`${t.server.url}/trpc/${call.procedure}`, { method: "POST", headers, body: input });
  };

  for (const call of calls) {
    it(call.name, async () => {
      const response = await send(call);
      const body = await response.text();
      expect(response.status, body.slice(0, 300)).toBeGreaterThanOrEqual(400);
      expect(response.status, body.slice(0, 300)).toBeLessThan(500);
      expect(body.length).toBeLessThan(8_000);
      expect(body).not.toMatch(internals);
      expect(body).not.toContain(call.marker);
      // The answer still says which field is wrong, as tRPC's JSON error.
      const error = (JSON.parse(body) as { error?: { message?: string; data?: { code?: string } } }).error;
      expect(error?.data?.code).toBe(response.status === 413 ? "PAYLOAD_TOO_LARGE" : "BAD_REQUEST");
      expect(error?.message?.length).toBeGreaterThan(0);
    });
  }

  it("logs none of these as the database being unavailable", () => {
    expect(logLines.filter((line) => line.includes("DatabaseUnavailable"))).toEqual([]);
    // Refused before any statement ran: no error-level line at all.
    expect(logLines.filter((line) => line.includes(`"level":"ERROR"`))).toEqual([]);
  });
});
