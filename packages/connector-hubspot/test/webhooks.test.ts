import { createHmac } from "node:crypto";
import type { InboundWebhookRequest, WebhookEvent } from "@tandem/core";
import { createHubSpotFake, createHubSpotWebhookEmitter, createManualClock, seededRandom } from "@tandem/testkit";
import { Schema } from "effect";
import { HttpResponse, http } from "msw";
import { setupServer } from "msw/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import hubspot, { HubSpotConfig } from "../src/index.ts";

const webhooks = hubspot.webhooks!;
/** HubSpot's documented example secret. */
const docSecret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";

const configWith = (webhookConfig: Record<string, unknown>) =>
  Schema.decodeUnknownSync(HubSpotConfig)({ accessToken: "pat-x", webhooks: webhookConfig });

const inbound = (input: {
  method?: string;
  url: string;
  body: string;
  headers: Record<string, string>;
}): InboundWebhookRequest => ({
  method: input.method ?? "POST",
  url: input.url,
  rawBody: input.body,
  headers: new Headers(input.headers),
});

/** v3 computed here with node:crypto, independently of the connector and the testkit. */
const v3 = (secret: string, method: string, uri: string, body: string, timestamp: number) =>
  createHmac("sha256", secret).update(`${method}${uri}${body}${timestamp}`).digest("base64");

describe("verify", () => {
  it("accepts HubSpot's published v1 example, only when v1 is configured", () => {
    // From HubSpot's "Validating requests" page (v1, contact.creation example).
    const body =
      '[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]';
    const request = inbound({
      url: "https://sync.example.com/webhooks/hubspot",
      body,
      headers: {
        "x-hubspot-signature": "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de",
        "x-hubspot-signature-version": "v1",
      },
    });
    const now = new Date();
    expect(
      webhooks.verify({ config: configWith({ clientSecret: docSecret, signatureVersions: ["v1"] }), now }, request),
    ).toBe(true);
    expect(webhooks.verify({ config: configWith({ clientSecret: docSecret }), now }, request)).toBe(false);
    expect(
      webhooks.verify({ config: configWith({ clientSecret: "other", signatureVersions: ["v1"] }), now }, request),
    ).toBe(false);
    expect(webhooks.parse(request)).toEqual([
      { eventId: "1", entity: "contacts", externalId: "123", kind: "created", occurredAt: new Date(1564113600000) },
    ]);
  });

  it("accepts HubSpot's published v2 examples", () => {
    const config = configWith({ clientSecret: docSecret, signatureVersions: ["v2"] });
    const now = new Date();
    const post = inbound({
      url: "https://www.example.com/webhook_uri",
      body: '{"example_field":"example_value"}',
      headers: {
        "x-hubspot-signature": "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900",
        "x-hubspot-signature-version": "v2",
      },
    });
    const get = inbound({
      method: "GET",
      url: "https://www.example.com/webhook_uri",
      body: "",
      headers: {
        "x-hubspot-signature": "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e",
        "x-hubspot-signature-version": "v2",
      },
    });
    expect(webhooks.verify({ config, now }, post)).toBe(true);
    expect(webhooks.verify({ config, now }, get)).toBe(true);
    expect(webhooks.verify({ config, now }, { ...post, rawBody: '{"example_field":"other"}' })).toBe(false);
  });

  describe("v3", () => {
    const secret = "app-client-secret";
    const url = "https://sync.example.com/webhooks/hubspot?connection=42";
    const body = '[{"eventId":7,"subscriptionType":"contact.deletion","objectId":5,"occurredAt":1700000000000}]';
    const now = new Date(Date.UTC(2026, 10, 22, 3, 0, 0));
    const config = configWith({ clientSecret: secret });
    const signed = (timestamp: number, overrides: { body?: string; secret?: string; url?: string } = {}) =>
      inbound({
        url: overrides.url ?? url,
        body: overrides.body ?? body,
        headers: {
          "x-hubspot-signature-v3": v3(overrides.secret ?? secret, "POST", url, body, timestamp),
          "x-hubspot-request-timestamp": String(timestamp),
        },
      });

    it("accepts a signature computed independently", () => {
      expect(webhooks.verify({ config, now }, signed(now.getTime() - 1_000))).toBe(true);
    });

    it("rejects a stale (or far-future) timestamp", () => {
      expect(webhooks.verify({ config, now }, signed(now.getTime() - 5 * 60_000 - 1))).toBe(false);
      expect(webhooks.verify({ config, now }, signed(now.getTime() + 5 * 60_000 + 1))).toBe(false);
      expect(webhooks.verify({ config, now }, signed(now.getTime() - 4 * 60_000))).toBe(true);
    });

    it("rejects a tampered body, a wrong secret, a missing header", () => {
      const ts = now.getTime();
      expect(webhooks.verify({ config, now }, signed(ts, { body: body.replace('"objectId":5', '"objectId":6') }))).toBe(
        false,
      );
      expect(webhooks.verify({ config, now }, signed(ts, { secret: "wrong-secret" }))).toBe(false);
      expect(webhooks.verify({ config, now }, inbound({ url, body, headers: {} }))).toBe(false);
      const noSecret = Schema.decodeUnknownSync(HubSpotConfig)({ accessToken: "pat-x" });
      expect(webhooks.verify({ config: noSecret, now }, signed(ts))).toBe(false);
    });

    it("rebuilds the public URI behind a proxy", () => {
      const ts = now.getTime();
      const behindProxy = signed(ts, { url: "http://10.0.0.7:3000/webhooks/hubspot?connection=42" });
      expect(webhooks.verify({ config, now }, behindProxy)).toBe(false);
      const proxied = configWith({ clientSecret: secret, publicOrigin: "https://sync.example.com" });
      expect(webhooks.verify({ config: proxied, now }, behindProxy)).toBe(true);
    });

    it("uses the OAuth client secret when no webhook secret is set", () => {
      const oauthConfig = Schema.decodeUnknownSync(HubSpotConfig)({
        oauth: { clientId: "c", clientSecret: secret, refreshToken: "r" },
      });
      expect(webhooks.verify({ config: oauthConfig, now }, signed(now.getTime()))).toBe(true);
    });
  });
});

describe("parse", () => {
  const event = (fields: Record<string, unknown>) => ({
    eventId: 1,
    subscriptionId: 2,
    portalId: 3,
    appId: 4,
    occurredAt: 1_700_000_000_000,
    attemptNumber: 0,
    objectId: 100,
    changeSource: "CRM",
    ...fields,
  });

  it("normalizes creation, propertyChange, deletion, merge and restore; drops the rest", () => {
    const body = JSON.stringify([
      event({ eventId: 1, subscriptionType: "contact.creation" }),
      event({ eventId: 2, subscriptionType: "contact.propertyChange", propertyName: "email", propertyValue: "a@b.co" }),
      event({ eventId: 3, subscriptionType: "company.deletion", objectId: 200 }),
      event({
        eventId: 4,
        subscriptionType: "contact.merge",
        objectId: 100,
        primaryObjectId: 100,
        mergedObjectIds: [100, 101],
        newObjectId: 100,
      }),
      event({ eventId: 5, subscriptionType: "contact.restore", objectId: 102 }),
      event({ eventId: 6, subscriptionType: "object.propertyChange", objectTypeId: "0-2", objectId: 201 }),
      event({ eventId: 7, subscriptionType: "contact.associationChange" }),
      event({ eventId: 8, subscriptionType: "deal.creation" }),
      { not: "an event" },
    ]);
    const parsed = webhooks.parse(inbound({ url: "https://x.test/h", body, headers: {} }));
    expect(parsed.map((e) => [e.eventId, e.entity, e.externalId, e.kind])).toEqual([
      ["1", "contacts", "100", "created"],
      ["2", "contacts", "100", "updated"],
      ["3", "companies", "200", "deleted"],
      ["4", "contacts", "100", "merged"],
      ["4:101", "contacts", "101", "deleted"],
      ["5", "contacts", "102", "restored"],
      ["6", "companies", "201", "updated"],
    ]);
    expect(parsed[0]!.occurredAt).toEqual(new Date(1_700_000_000_000));
  });

  it("rejects a body that is not a JSON array", () => {
    expect(() => webhooks.parse(inbound({ url: "https://x.test/h", body: "{}", headers: {} }))).toThrow(/array/);
    expect(() => webhooks.parse(inbound({ url: "https://x.test/h", body: "nope", headers: {} }))).toThrow(/JSON/);
  });
});

describe("the fake's emitter, end to end", () => {
  const targetUrl = "https://tandem.test/webhooks/hubspot";
  const secret = "emitter-secret";
  const received: Array<{ verified: boolean; events: ReadonlyArray<WebhookEvent> }> = [];
  const config = configWith({ clientSecret: secret });
  const receiver = setupServer(
    http.post(targetUrl, async ({ request }) => {
      const rawBody = await request.text();
      const inboundRequest = { method: request.method, url: request.url, headers: request.headers, rawBody };
      const verified = webhooks.verify({ config, now: new Date() }, inboundRequest);
      received.push({ verified, events: verified ? webhooks.parse(inboundRequest) : [] });
      return verified ? new HttpResponse(null, { status: 204 }) : new HttpResponse(null, { status: 401 });
    }),
  );
  beforeAll(() => receiver.listen({ onUnhandledFrame: "error" }));
  afterAll(() => receiver.close());

  it("delivers signed, duplicated and reordered events that verify and dedupe to the changes made", async () => {
    const fake = createHubSpotFake({ clock: createManualClock() });
    const [a, b, c] = fake.seedContacts(3);
    const emitter = createHubSpotWebhookEmitter({
      store: fake.store,
      targetUrl,
      clientSecret: secret,
      duplicateRate: 0.5,
      reorder: true,
      maxEventsPerRequest: 3,
      random: seededRandom(7),
    });
    fake.store.create("contacts", { email: "new@example.com" });
    fake.store.update("contacts", a!.id, { firstname: "Renamed" });
    fake.store.archive("contacts", b!.id);
    fake.store.merge("contacts", a!.id, c!.id);
    fake.store.restore("contacts", b!.id);
    const deliveries = await emitter.flush();
    emitter.close();
    expect(deliveries.every((d) => d.status === 204)).toBe(true);
    expect(received.every((r) => r.verified)).toBe(true);
    const all = received.flatMap((r) => r.events);
    const unique = new Map(all.map((e) => [e.eventId, e]));
    expect(all.length).toBeGreaterThan(unique.size);
    const kinds = [...unique.values()].map((e) => `${e.kind} ${e.externalId}`).sort();
    expect(kinds).toEqual(
      [
        `created ${fake.store.findByEmail("new@example.com")!.id}`,
        `updated ${a!.id}`,
        `deleted ${b!.id}`,
        `merged ${a!.id}`,
        `deleted ${c!.id}`,
        `restored ${b!.id}`,
      ].sort(),
    );
  });
});
