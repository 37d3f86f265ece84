import { randomBytes } from "node:crypto";
import { hubSpotSignatureHeaders } from "@tandem/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

const WEBHOOK_SECRET = "hubspot-app-client-secret";

/**
 * Concurrent inbound deliveries share one intake statement. A delivery whose event PostgreSQL
 * cannot store used to fail that statement, and with it every delivery sharing it: 691 of a
 * tenant's 1,000 valid deliveries answered 500 beside 500 poisoned ones from another tenant.
 */
describe("poisoned webhook deliveries beside another tenant's", () => {
  let t: TestServer;
  const connections: Record<"a" | "b", string> = { a: "", b: "" };

  beforeAll(async () => {
    // No workers: the queued jobs would call the (absent) vendor; only the intake is under test.
    t = await startTestServer("postgres", { TANDEM_WORKER: "false" });
    const admin = t.client(t.adminKey);
    for (const tenant of ["a", "b"] as const) {
      const created = await admin.tenants.create.mutate({ name: `tenant ${tenant}` });
      const key = (await admin.apiKeys.create.mutate({ tenantId: created.id, name: "k" })).key;
      const connection = await t.client(key).connections.create.mutate({
        connector: "hubspot",
        name: "crm",
        config: {
          accessToken: "t",
          baseUrl: "http://127.0.0.1:9/hubspot",
          webhooks: { clientSecret: WEBHOOK_SECRET },
        },
      });
      connections[tenant] = connection.id;
    }
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  /** A signed HubSpot delivery, ready to send; `body` is the JSON text of its events. */
  const delivery = (connectionId: string, body: string) => {
    const url = `${t.server.url}/webhooks/hubspot/${connectionId}`;
    const headers = {
      "content-type": "application/json",
      ...hubSpotSignatureHeaders({
        clientSecret: WEBHOOK_SECRET,
        method: "POST",
        uri: url,
        body,
        timestamp: Date.now(),
        versions: ["v3"],
      }),
    };
    return () => fetch(url, { method: "POST", headers, body });
  };

  const event = (fields: { eventId: string | number; objectId: string | number; occurredAt: number }) =>
    JSON.stringify({ subscriptionType: "contact.propertyChange", ...fields });

  it("answers every valid delivery 200 and each poisoned one 400", async () => {
    const now = Date.now();
    const valid = Array.from({ length: 300 }, (_, i) =>
      delivery(
        connections.a,
        `[${event({ eventId: 100_000 + 2 * i, objectId: 1 + i, occurredAt: now })},${event({ eventId: 100_001 + 2 * i, objectId: 1 + i, occurredAt: now })}]`,
      ),
    );
    // Each passes the connector's parsing, and each failed the shared statement in PostgreSQL.
    const poisons = [
      // "time zone displacement out of range"
      (i: number) => event({ eventId: 200_000 + i, objectId: 1, occurredAt: -1_000_000_000_000_000 }),
      // A lone surrogate, refused by jsonb.
      (i: number) =>
        `{"subscriptionType":"contact.propertyChange","eventId":"\\ud800x${i}","objectId":1,"occurredAt":${now}}`,
      // An event id too large for its index row.
      (i: number) => event({ eventId: `${i}${randomBytes(10_000).toString("hex")}`, objectId: 1, occurredAt: now }),
    ];
    const poisoned = Array.from({ length: 150 }, (_, i) =>
      delivery(
        connections.b,
        `[${event({ eventId: 300_000 + i, objectId: 1, occurredAt: now })},${poisons[i % poisons.length]!(i)}]`,
      ),
    );
    // Interleaved and sent at once, so that poisoned and valid deliveries share statements.
    const sends = valid.flatMap((send, i) => (i % 2 === 0 && poisoned[i / 2] ? [send, poisoned[i / 2]!] : [send]));
    const responses = await Promise.all(sends.map((send) => send()));
    const answers = await Promise.all(
      responses.map(async (r) => ({ url: r.url, status: r.status, body: (await r.json()) as Record<string, unknown> })),
    );
    const ofA = answers.filter((a) => a.url.includes(connections.a));
    const ofB = answers.filter((a) => a.url.includes(connections.b));
    expect(ofA).toHaveLength(300);
    expect(ofB).toHaveLength(150);
    expect(ofA.filter((a) => a.status !== 200).map((a) => a.status)).toEqual([]);
    // Every valid event was stored once.
    expect(ofA.reduce((sum, a) => sum + Number(a.body.accepted), 0)).toBe(600);
    expect(ofB.filter((a) => a.status !== 400).map((a) => a.status)).toEqual([]);
    // The refusal names the event and field, not the value.
    expect(String(ofB[0]!.body.error)).toMatch(/^webhook event 1 is malformed: occurredAt /);
    expect(String(ofB[1]!.body.error)).toMatch(/^webhook event 1 is malformed: eventId .*surrogate/);
    expect(String(ofB[2]!.body.error)).toMatch(
      /^webhook event 1 is malformed: eventId must be at most 512 characters$/,
    );
  });
});
