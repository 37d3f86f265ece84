import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { expect, layer } from "@effect/vitest";
import {
  ConnectorRegistry,
  CredentialCipher,
  Database,
  generateSecretKey,
  JobQueue,
  OutboundWebhooks,
  OutboundWebhooksConfig,
  SIGNATURE_HEADER,
  Tenants,
  verifySignature,
} from "@tandem/core";
import { dialects, loopbackEgressPolicy, testDatabaseLayer } from "@tandem/testkit";
import { Effect, Layer, Redacted } from "effect";
import { afterAll, beforeAll, describe, it as vitestIt } from "vitest";

/** A real receiver on loopback: records what arrives, answers what the test says. */
const receiver = {
  url: "",
  received: [] as Array<{ headers: IncomingHttpHeaders; body: string }>,
  answer: { status: 200, headers: {} as Record<string, string> },
};
const server = createServer((req, res) => {
  let body = "";
  req.on("data", (c) => {
    body += c;
  });
  req.on("end", () => {
    receiver.received.push({ headers: req.headers, body });
    res.writeHead(receiver.answer.status, receiver.answer.headers).end("ok");
  });
});
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
});
afterAll(() => server.close());

const services = (dialect: (typeof dialects)[number]) =>
  Layer.mergeAll(OutboundWebhooks.layerNoDeps, Tenants.layer).pipe(
    Layer.provideMerge(JobQueue.layer),
    Layer.provideMerge(Layer.succeed(OutboundWebhooksConfig, { timeoutMs: 2_000 })),
    Layer.provideMerge(
      Layer.mergeAll(
        CredentialCipher.layer(Redacted.make(Buffer.from(generateSecretKey(), "base64url"))),
        ConnectorRegistry.layer([]),
        // The receiver is on loopback.
        loopbackEgressPolicy,
      ),
    ),
    Layer.provideMerge(testDatabaseLayer(dialect)),
  );

describe("verifySignature", () => {
  vitestIt("accepts a fresh signature and rejects stale, tampered or foreign ones", async () => {
    const { signPayload } = await import("@tandem/core");
    const now = new Date("2026-11-22T00:00:00Z");
    const t = Math.floor(now.getTime() / 1000);
    const header = signPayload("s1", '{"a":1}', t);
    expect(verifySignature("s1", header, '{"a":1}', { now })).toBe(true);
    expect(verifySignature("s1", header, '{"a":2}', { now })).toBe(false);
    expect(verifySignature("s2", header, '{"a":1}', { now })).toBe(false);
    expect(verifySignature("s1", header, '{"a":1}', { now: new Date(now.getTime() + 301_000) })).toBe(false);
    expect(verifySignature("s1", "t=abc,v1=zz", '{"a":1}', { now })).toBe(false);
    expect(verifySignature("s1", undefined, '{"a":1}', { now })).toBe(false);
  });
});

for (const dialect of dialects) {
  layer(services(dialect))(`OutboundWebhooks on ${dialect}`, (it) => {
    it.effect("delivers signed events to the subscriptions that want them, and records every attempt", () =>
      Effect.gen(function* () {
        const webhooks = yield* OutboundWebhooks;
        const tenant = yield* Effect.flatMap(Tenants, (t) => t.create({ name: "W" }));
        const sub = yield* webhooks.create(tenant.id, {
          url: receiver.url,
          events: ["sync.completed", "record.created"],
        });
        yield* webhooks.create(tenant.id, { url: receiver.url, events: ["alert.triggered"] });
        expect(sub.secret).toMatch(/^whsec_/);
        const stored = yield* Effect.flatMap(Database, (db) =>
          db.query((k) =>
            k
              .selectFrom("webhook_subscriptions")
              .select("secret_ciphertext")
              .where("id", "=", sub.id)
              .executeTakeFirstOrThrow(),
          ),
        );
        expect(stored.secret_ciphertext).not.toContain(sub.secret);
        expect(JSON.stringify(yield* webhooks.list(tenant.id))).not.toContain(sub.secret);

        const ids = yield* webhooks.emit(tenant.id, "sync.completed", { runId: "r1" });
        expect(ids).toHaveLength(1);
        // The outbox row and its attempt job are written together.
        const jobs = yield* Effect.flatMap(JobQueue, (q) => q.list({ kind: "webhook.deliver", tenantId: tenant.id }));
        expect(jobs.map((j) => j.payload)).toEqual([{ deliveryId: ids[0] }]);

        receiver.received.length = 0;
        receiver.answer = { status: 500, headers: {} };
        const failed = yield* Effect.flip(webhooks.attempt(ids[0]!));
        expect(failed._tag).toBe("Unavailable");

        receiver.answer = { status: 429, headers: { "retry-after": "7" } };
        const limited = yield* Effect.flip(webhooks.attempt(ids[0]!));
        expect(limited).toMatchObject({ _tag: "RateLimited", retryAfterMs: 7000 });

        receiver.answer = { status: 204, headers: {} };
        yield* webhooks.attempt(ids[0]!);
        // Delivered: another attempt does nothing.
        yield* webhooks.attempt(ids[0]!);
        expect(receiver.received).toHaveLength(3);
        const last = receiver.received[2]!;
        expect(verifySignature(sub.secret, last.headers[SIGNATURE_HEADER] as string, last.body)).toBe(true);
        expect(JSON.parse(last.body)).toMatchObject({ type: "sync.completed", data: { runId: "r1" } });
        expect(last.headers["tandem-event-type"]).toBe("sync.completed");

        const log = yield* webhooks.deliveries(tenant.id, { subscriptionId: sub.id });
        expect(log.items).toHaveLength(1);
        expect(log.items[0]).toMatchObject({ status: "delivered", attempts: 3, lastStatus: 204, lastError: null });

        const replayed = yield* webhooks.replay(tenant.id, ids[0]!);
        expect(replayed.status).toBe("pending");
        yield* webhooks.attempt(ids[0]!);
        expect(receiver.received).toHaveLength(4);
      }),
    );

    it.effect("a 410 disables the subscription; dead deliveries stay dead until replayed", () =>
      Effect.gen(function* () {
        const webhooks = yield* OutboundWebhooks;
        const tenant = yield* Effect.flatMap(Tenants, (t) => t.create({ name: "Gone" }));
        const other = yield* Effect.flatMap(Tenants, (t) => t.create({ name: "Other" }));
        const sub = yield* webhooks.create(tenant.id, { url: receiver.url, events: ["alert.triggered"] });
        const [first] = yield* webhooks.emit(tenant.id, "alert.triggered", { rule: "x" });
        receiver.answer = { status: 410, headers: {} };
        expect((yield* Effect.flip(webhooks.attempt(first!)))._tag).toBe("DeliveryRejected");
        const [listed] = yield* webhooks.list(tenant.id);
        expect(listed?.disabledReason).toBe("receiver answered 410 Gone");
        expect(yield* webhooks.emit(tenant.id, "alert.triggered", { rule: "y" })).toEqual([]);

        const live = yield* webhooks.create(tenant.id, { url: receiver.url, events: ["sync.failed"] });
        const [second] = yield* webhooks.emit(tenant.id, "sync.failed", {});
        yield* webhooks.markDead(second!, "gave up after 8 attempts");
        yield* webhooks.attempt(second!); // dead: not sent again
        const dead = yield* webhooks.deliveries(tenant.id, { status: "dead" });
        expect(dead.items.map((d) => d.id).sort()).toEqual([first, second].sort());
        expect(dead.items.find((d) => d.id === second)?.lastError).toBe("gave up after 8 attempts");
        expect((yield* webhooks.deliveries(tenant.id, { subscriptionId: live.id })).items).toHaveLength(1);

        expect((yield* Effect.flip(webhooks.replay(other.id, first!)))._tag).toBe("ResourceNotFound");
        expect((yield* Effect.flip(webhooks.delete(other.id, sub.id)))._tag).toBe("ResourceNotFound");
        expect(yield* webhooks.delete(tenant.id, sub.id)).toEqual({ id: sub.id });
      }),
    );

    it.effect("a redirect to another host is not followed: rejected for good, the log names no port or status", () =>
      Effect.gen(function* () {
        const webhooks = yield* OutboundWebhooks;
        const tenant = yield* Effect.flatMap(Tenants, (t) => t.create({ name: "Redirected" }));
        yield* webhooks.create(tenant.id, { url: receiver.url, events: ["sync.completed"] });
        const [id] = yield* webhooks.emit(tenant.id, "sync.completed", {});
        // The receiver sends the signed POST on to the metadata service (a 307 keeps method and body).
        receiver.answer = { status: 307, headers: { location: "http://169.254.169.254/latest/meta-data/" } };
        const failure = yield* Effect.flip(webhooks.attempt(id!));
        receiver.answer = { status: 200, headers: {} };
        expect(failure._tag).toBe("DeliveryRejected");
        const [delivery] = (yield* webhooks.deliveries(tenant.id, {})).items;
        expect(delivery).toMatchObject({
          lastStatus: null,
          lastError: "refused by the egress policy (private, loopback or link-local address, or a redirect)",
        });
      }),
    );
  });
}
