import { type ConnectorContext, InvalidRecord, makeStandaloneContext, type WebhookEvent } from "@tandem/core";
import {
  businessCentralFakeApp,
  businessCentralFakeIds,
  businessCentralHandlers,
  businessCentralNotification,
  businessCentralNotificationRequest,
  businessCentralResource,
  createBusinessCentralFake,
  createManualClock,
} from "@tandem/testkit";
import { Schema } from "effect";
import { HttpResponse, http } from "msw";
import { setupServer } from "msw/node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import erp, {
  BusinessCentralConfig,
  renewBusinessCentralSubscription,
  subscribeBusinessCentral,
} from "../src/index.ts";

const webhooks = erp.webhooks!;
const clientState = "a-long-random-client-state";
const receiverUrl = "https://tandem.test/webhooks/erp/conn_1";
const { companyId } = businessCentralFakeIds;

const configWith = (overrides: Record<string, unknown> = {}) =>
  Schema.decodeUnknownSync(BusinessCentralConfig)({
    baseUrl: "https://bc.webhooks.test",
    authorityUrl: "https://login.webhooks.test",
    ...businessCentralFakeIds,
    clientId: businessCentralFakeApp.clientId,
    clientSecret: businessCentralFakeApp.clientSecret,
    webhookClientState: clientState,
    ...overrides,
  });

const config = configWith();
const now = new Date(Date.UTC(2026, 6, 1));

const notification = (overrides: Partial<Parameters<typeof businessCentralNotification>[0]> = {}) =>
  businessCentralNotification({
    clientState,
    resource: businessCentralResource(companyId, "items", "4ad9b6d1-3f2a-4c5b-8d9e-0a1b2c3d4e5f"),
    changeType: "updated",
    lastModifiedDateTime: "2026-07-01T10:00:00.000Z",
    ...overrides,
  });

describe("handshake", () => {
  it("echoes validationToken as the body of a 200, for GET and POST", () => {
    for (const method of ["GET", "POST"]) {
      expect(
        webhooks.handshake!({
          method,
          url: `${receiverUrl}?validationToken=d9f4c1e2-token`,
          headers: new Headers(),
          rawBody: "",
        }),
      ).toEqual({ status: 200, body: "d9f4c1e2-token" });
    }
  });

  it("is not a handshake without validationToken", () => {
    const request = businessCentralNotificationRequest(receiverUrl, [notification()]);
    expect(webhooks.handshake!(request)).toBeNull();
  });
});

describe("verify", () => {
  it("accepts a delivery whose notifications all carry the configured clientState", () => {
    const request = businessCentralNotificationRequest(receiverUrl, [
      notification(),
      notification({ changeType: "deleted" }),
    ]);
    expect(webhooks.verify({ config, now }, request)).toBe(true);
  });

  it("refuses a wrong or missing clientState, a single bad notification, and an unconfigured connection", () => {
    const wrong = businessCentralNotificationRequest(receiverUrl, [notification({ clientState: "guess" })]);
    expect(webhooks.verify({ config, now }, wrong)).toBe(false);
    const mixed = businessCentralNotificationRequest(receiverUrl, [notification(), notification({ clientState: "" })]);
    expect(webhooks.verify({ config, now }, mixed)).toBe(false);
    const { clientState: _, ...withoutState } = notification();
    const missing = { ...wrong, rawBody: JSON.stringify({ value: [withoutState] }) };
    expect(webhooks.verify({ config, now }, missing)).toBe(false);
    const good = businessCentralNotificationRequest(receiverUrl, [notification()]);
    expect(webhooks.verify({ config: configWith({ webhookClientState: undefined }), now }, good)).toBe(false);
  });

  it("refuses bodies that are not a delivery", () => {
    for (const rawBody of ["", "not json", "[]", '{"value":[]}', '{"value":"x"}']) {
      expect(
        webhooks.verify({ config, now }, { ...businessCentralNotificationRequest(receiverUrl, []), rawBody }),
      ).toBe(false);
    }
  });
});

describe("parse", () => {
  it("maps items(<id>) and customers(<id>) resources to events with their change type", () => {
    const customerId = "130BBD17-DBB9-4790-9B12-2B0E9C9D22C3";
    const events = webhooks.parse(
      businessCentralNotificationRequest(receiverUrl, [
        notification({ changeType: "created" }),
        notification({
          resource: businessCentralResource(companyId, "customers", customerId),
          changeType: "deleted",
          lastModifiedDateTime: "2026-07-01T10:05:00.000Z",
        }),
      ]),
    );
    expect(events).toEqual([
      {
        eventId: expect.stringMatching(/^bc:[0-9a-f]{64}$/),
        entity: "items",
        externalId: "4ad9b6d1-3f2a-4c5b-8d9e-0a1b2c3d4e5f",
        kind: "created",
        occurredAt: new Date("2026-07-01T10:00:00.000Z"),
      },
      {
        eventId: expect.stringMatching(/^bc:[0-9a-f]{64}$/),
        entity: "customers",
        externalId: customerId.toLowerCase(),
        kind: "deleted",
        occurredAt: new Date("2026-07-01T10:05:00.000Z"),
      },
    ]);
  });

  it("derives the same event id for a retried notification, and another for another change", () => {
    const idOf = (n: ReturnType<typeof notification>) =>
      webhooks.parse(businessCentralNotificationRequest(receiverUrl, [n]))[0]!.eventId;
    expect(idOf(notification())).toBe(idOf(notification()));
    expect(idOf(notification())).not.toBe(idOf(notification({ changeType: "deleted" })));
    expect(idOf(notification())).not.toBe(idOf(notification({ lastModifiedDateTime: "2026-07-01T10:00:01.000Z" })));
  });

  it("drops collection notifications (the scheduled delta reads them) and resources it does not sync", () => {
    const events = webhooks.parse(
      businessCentralNotificationRequest(receiverUrl, [
        notification({ changeType: "collection", resource: businessCentralResource(companyId, "items") }),
        notification({ resource: `/api/v2.0/companies(${companyId})/vendors(4ad9b6d1-3f2a-4c5b-8d9e-0a1b2c3d4e5f)` }),
        { garbage: true } as unknown as ReturnType<typeof notification>,
      ]),
    );
    expect(events).toEqual([]);
  });

  it("a body that is not { value: [...] } is InvalidRecord", () => {
    expect(() => webhooks.parse({ ...businessCentralNotificationRequest(receiverUrl, []), rawBody: "[1]" })).toThrow(
      InvalidRecord,
    );
  });
});

describe("subscriptions against the fake", () => {
  const clock = createManualClock(now.getTime());
  const fake = createBusinessCentralFake({
    baseUrl: "https://bc.webhooks.test",
    authorityUrl: "https://login.webhooks.test",
    clock,
  });
  /** What reached the receiver, handled as the server's webhook route does. */
  const received: Array<{ verified: boolean; events: ReadonlyArray<WebhookEvent> }> = [];
  let refuseHandshake = false;
  const server = setupServer(
    ...businessCentralHandlers(fake),
    http.all(receiverUrl, async ({ request }) => {
      const inbound = {
        method: request.method,
        url: request.url,
        headers: new Headers(request.headers),
        rawBody: await request.text(),
      };
      const handshake = webhooks.handshake!(inbound);
      if (handshake !== null) {
        if (refuseHandshake) return new HttpResponse("no", { status: 400 });
        return new HttpResponse(handshake.body, {
          status: handshake.status,
          headers: { "content-type": "text/plain" },
        });
      }
      const verified = webhooks.verify({ config, now: new Date(clock.now()) }, inbound);
      received.push({ verified, events: verified ? webhooks.parse(inbound) : [] });
      return new HttpResponse(null, { status: verified ? 202 : 401 });
    }),
  );
  beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
  afterAll(() => server.close());
  beforeEach(() => {
    fake.reset();
    received.length = 0;
    refuseHandshake = false;
  });

  const ctx: ConnectorContext<BusinessCentralConfig> = makeStandaloneContext(erp, config, {
    http: { timeoutMs: 5_000 },
    log: { debug: () => {}, info: () => {}, warn: () => {} },
  });

  it("subscribing performs the handshake; changes arrive as verified notifications that parse to events", async () => {
    const subscription = await subscribeBusinessCentral(ctx, { entity: "items", notificationUrl: receiverUrl });
    expect(subscription).toMatchObject({
      notificationUrl: receiverUrl,
      resource: businessCentralResource(companyId, "items"),
      clientState,
    });
    expect(fake.subscriptions()).toHaveLength(1);

    const [kept, dropped] = fake.seedItems(2);
    fake.seedCustomers(1);
    clock.advance(1_000);
    fake.store.update("items", kept!.id, { unitPrice: 5 });
    fake.store.remove("items", dropped!.id);
    fake.store.update("customers", fake.records("customers")[0]!.id, { email: "x@example.com" });
    const deliveries = await fake.deliverNotifications();
    expect(deliveries.map((d) => d.status)).toEqual([202]);
    expect(received).toHaveLength(1);
    expect(received[0]!.verified).toBe(true);
    expect(received[0]!.events.map((e) => [e.entity, e.externalId, e.kind])).toEqual([
      ["items", kept!.id, "updated"],
      ["items", dropped!.id, "deleted"],
    ]);
    expect(fake.pendingNotifications()).toEqual([]);
  });

  it("past the threshold BC sends one collection notification, which verifies and parses to no events", async () => {
    await subscribeBusinessCentral(ctx, { entity: "customers", notificationUrl: receiverUrl });
    fake.knobs.collectionThreshold = 2;
    clock.advance(1_000);
    for (let i = 0; i < 3; i++) fake.store.create("customers", { displayName: `Bulk ${i}` });
    const [delivery] = await fake.deliverNotifications();
    expect(delivery!.notifications.map((n) => n.changeType)).toEqual(["collection"]);
    expect(received).toEqual([{ verified: true, events: [] }]);
  });

  it("a failed handshake fails the subscription; a renewal repeats it and extends the expiry", async () => {
    refuseHandshake = true;
    await expect(
      subscribeBusinessCentral(ctx, { entity: "items", notificationUrl: receiverUrl }),
    ).rejects.toBeInstanceOf(InvalidRecord);
    expect(fake.subscriptions()).toHaveLength(0);

    refuseHandshake = false;
    const subscription = await subscribeBusinessCentral(ctx, { entity: "items", notificationUrl: receiverUrl });
    clock.advance(2 * 24 * 60 * 60 * 1000);
    const renewed = await renewBusinessCentralSubscription(ctx, subscription);
    expect(Date.parse(renewed.expirationDateTime) - Date.parse(subscription.expirationDateTime)).toBe(
      2 * 24 * 60 * 60 * 1000,
    );
    expect(renewed["@odata.etag"]).not.toBe(subscription["@odata.etag"]);
  });

  it("subscribing without a configured clientState is refused before calling BC", async () => {
    const bare = { ...ctx, config: configWith({ webhookClientState: undefined }) };
    await expect(
      subscribeBusinessCentral(bare, { entity: "items", notificationUrl: receiverUrl }),
    ).rejects.toBeInstanceOf(InvalidRecord);
    expect(fake.requests()).toHaveLength(0);
  });
});
