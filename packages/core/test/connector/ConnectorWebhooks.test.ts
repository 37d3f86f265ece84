import { expect, layer } from "@effect/vitest";
import { Connections, EntitySync } from "@tandem/core";
import {
  AcmeCrm,
  acmeConnector,
  acmeWebhookRequest,
  createTestConnection,
  dialects,
  startAcmeServer,
  testEngineLayer,
} from "@tandem/testkit";
import { Effect, Redacted, TestServices } from "effect";
import { afterAll, beforeAll } from "vitest";

const acme = new AcmeCrm();
let server: ReturnType<typeof startAcmeServer>;
beforeAll(() => {
  server = startAcmeServer(acme);
});
afterAll(() => server.close());

const webhooks = acmeConnector.webhooks!;
const secret = "whsec-acme";
const config = { baseUrl: acme.baseUrl, token: Redacted.make(acme.token), webhookSecret: Redacted.make(secret) };
const now = new Date("2026-03-01T12:00:00.000Z");
const event = (id: string, objectId: string, type: "contact.updated" | "contact.deleted" = "contact.updated") => ({
  id,
  type,
  objectId,
  occurredAt: now.toISOString(),
});

for (const dialect of dialects) {
  layer(testEngineLayer({ dialect, connectors: [acmeConnector] }), { timeout: 60_000 })(
    `Acme webhooks on ${dialect}`,
    (it) => {
      it.effect("verify accepts a valid signature and refuses tampering, replays and a missing secret", () =>
        Effect.sync(() => {
          const request = acmeWebhookRequest({ secret, events: [event("e1", "c000001")], now });
          expect(webhooks.verify({ config, now }, request)).toBe(true);
          expect(
            webhooks.verify({ config, now }, { ...request, rawBody: request.rawBody.replace("c000001", "c000002") }),
          ).toBe(false);
          const late = new Date(now.getTime() + 6 * 60_000);
          expect(webhooks.verify({ config, now: late }, request)).toBe(false);
          const forged = acmeWebhookRequest({ secret: "guess", events: [event("e1", "c000001")], now });
          expect(webhooks.verify({ config, now }, forged)).toBe(false);
          expect(webhooks.verify({ config: { ...config, webhookSecret: undefined }, now }, request)).toBe(false);
        }),
      );

      it.effect("parse normalizes events and handshake echoes the challenge", () =>
        Effect.sync(() => {
          const request = acmeWebhookRequest({
            secret,
            events: [event("e1", "c000001"), event("e2", "c000002", "contact.deleted")],
            now,
          });
          expect(webhooks.parse(request)).toEqual([
            { eventId: "e1", entity: "contacts", externalId: "c000001", kind: "updated", occurredAt: now },
            { eventId: "e2", entity: "contacts", externalId: "c000002", kind: "deleted", occurredAt: now },
          ]);
          const challenge = {
            method: "GET",
            url: "https://t.test/webhooks/acme-crm/x?challenge=abc",
            headers: new Headers(),
            rawBody: "",
          };
          expect(webhooks.handshake!(challenge)).toEqual({ status: 200, body: "abc" });
          expect(webhooks.handshake!({ ...challenge, url: "https://t.test/" })).toBeNull();
        }),
      );

      it.effect("parsed events drive single-record syncs", () =>
        TestServices.provideLive(
          Effect.gen(function* () {
            acme.reset();
            const ids = yield* createTestConnection("acme-crm", {
              baseUrl: acme.baseUrl,
              token: acme.token,
              webhookSecret: secret,
            });
            const target = { ...ids, entity: "contacts" };
            // The stored config (decrypted) verifies the request, as the inbound route will.
            const resolved = yield* (yield* Connections).resolve(ids.tenantId, ids.connectionId);
            const engine = yield* EntitySync;
            acme.seed(2);
            yield* engine.run({ ...target, mode: "full" });
            acme.update("c000001", { firstName: "Hooked" });
            acme.remove("c000002");
            const request = acmeWebhookRequest({
              secret,
              events: [event("e1", "c000001"), event("e2", "c000002", "contact.deleted")],
              now,
            });
            expect(webhooks.verify({ config: resolved.config as typeof config, now }, request)).toBe(true);
            const results = yield* Effect.forEach(webhooks.parse(request), (e) => engine.syncRecord(target, e));
            expect(results).toEqual([
              { action: "updated", externalId: "c000001" },
              { action: "deleted", externalId: "c000002" },
            ]);
          }),
        ),
      );
    },
  );
}
