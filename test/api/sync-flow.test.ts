import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { Locks, recordLockKey, verifySignature } from "@tandem/core";
import {
  createHubSpotWebhookEmitter,
  dialects,
  hubSpotFakeToken,
  hubSpotSignatureHeaders,
  type ServedHubSpotFake,
  serveHubSpotFake,
} from "@tandem/testkit";
import { Effect } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer, trpcCode } from "../support/server.ts";

const WEBHOOK_SECRET = "hubspot-app-client-secret";

/** A real receiver for Tandem's outbound webhooks. */
const startReceiver = async () => {
  const received: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    close: () => server.close(),
  };
};

for (const dialect of dialects) {
  describe(`syncs over the API on ${dialect}`, () => {
    let t: TestServer;
    let fake: ServedHubSpotFake;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    let keyA: string;
    let keyB: string;
    let connectionId: string;
    let brokenId: string;

    beforeAll(async () => {
      fake = await serveHubSpotFake({ port: 0 });
      fake.fake.seedContacts(240);
      fake.fake.seedCompanies(12);
      receiver = await startReceiver();
      t = await startTestServer(dialect, {
        TANDEM_WEBHOOK_MAX_BYTES: "65536",
        TANDEM_ALERTS_CRON: "*/2 * * * * *",
        // Local edits here wait for an explicit push (or a pull that meets them): pushes by
        // themselves are test/api/outbox.test.ts's subject.
        TANDEM_PUSH_INTERVAL_MS: "600000",
      });
      const admin = t.client(t.adminKey);
      const a = await admin.tenants.create.mutate({ name: "A" });
      const b = await admin.tenants.create.mutate({ name: "B" });
      keyA = (await admin.apiKeys.create.mutate({ tenantId: a.id, name: "a" })).key;
      keyB = (await admin.apiKeys.create.mutate({ tenantId: b.id, name: "b" })).key;
      const connection = await t.client(keyA).connections.create.mutate({
        connector: "hubspot",
        name: "crm",
        config: { baseUrl: fake.url, accessToken: hubSpotFakeToken, webhooks: { clientSecret: WEBHOOK_SECRET } },
      });
      connectionId = connection.id;
    }, 120_000);
    afterAll(async () => {
      await t?.close();
      await fake?.close();
      receiver?.close();
    });

    it("connections.test calls the connector's check: ok, refused with its reason, another tenant's not found", async () => {
      const a = t.client(keyA);
      expect(await a.connections.test.mutate({ id: connectionId })).toEqual({ ok: true, checked: true });
      const revoked = await a.connections.create.mutate({
        connector: "hubspot",
        name: "revoked-token",
        config: { baseUrl: fake.url, accessToken: "pat-revoked" },
      });
      const refused = await a.connections.test.mutate({ id: revoked.id });
      expect(refused).toMatchObject({ ok: false, checked: true, error: { type: "AuthExpired" } });
      expect(JSON.stringify(refused)).not.toContain("pat-revoked");
      expect(await trpcCode(t.client(keyB).connections.test.mutate({ id: connectionId }))).toBe("NOT_FOUND");
      expect(await trpcCode(t.client().connections.test.mutate({ id: connectionId }))).toBe("UNAUTHORIZED");
      await a.connections.delete.mutate({ id: revoked.id });
    });

    it("a triggered full sync streams its progress to the end; a second trigger answers already_running", async () => {
      const a = t.client(keyA);
      const subscription = await a.webhooks.create.mutate({ url: receiver.url, events: ["sync.completed"] });
      const { jobId, status } = await a.sync.trigger.mutate({ connectionId, entity: "contacts", mode: "full" });
      expect(status).toBe("queued");
      const second = await a.sync.trigger
        .mutate({ connectionId, entity: "contacts", mode: "full" })
        .catch((e: unknown) => e);
      expect((second as { data?: { code?: string; jobId?: string } }).data).toMatchObject({ code: "CONFLICT", jobId });

      const events = await new Promise<Array<{ status: string; processed: number; created: number }>>(
        (resolve, reject) => {
          const seen: Array<{ status: string; processed: number; created: number }> = [];
          const sub = a.jobs.watch.subscribe(
            { id: jobId },
            {
              onData: (p) => {
                seen.push(p);
                if (p.status === "completed" || p.status === "dead") {
                  sub.unsubscribe();
                  resolve(seen);
                }
              },
              onError: reject,
            },
          );
        },
      );
      const last = events.at(-1)!;
      expect(last).toMatchObject({ status: "completed", processed: 240, created: 240 });
      // Progress only moves forward.
      for (let i = 1; i < events.length; i++)
        expect(events[i]!.processed).toBeGreaterThanOrEqual(events[i - 1]!.processed);

      const job = await a.jobs.get.query({ id: jobId });
      expect(job.job.status).toBe("completed");
      expect(job.runs).toHaveLength(1);
      expect(job.runs[0]).toMatchObject({ status: "succeeded", created: 240, mode: "full", trigger: "api" });
      expect((await a.jobs.list.query({ connectionId })).map((j) => j.id)).toContain(jobId);

      // The outbound sync.completed event arrives signed with the subscription's secret.
      await expect.poll(() => receiver.received.length, { timeout: 60_000 }).toBeGreaterThan(0);
      const delivery = receiver.received[0]!;
      expect(verifySignature(subscription.secret, delivery.headers["tandem-signature"] as string, delivery.body)).toBe(
        true,
      );
      expect(JSON.parse(delivery.body)).toMatchObject({ type: "sync.completed", data: { jobId, created: 240 } });
      const log = await a.webhooks.deliveries.query({ subscriptionId: subscription.id });
      await expect
        .poll(async () => (await a.webhooks.deliveries.query({})).items[0]?.status, { timeout: 10_000 })
        .toBe("delivered");
      expect(log.items.length).toBe(1);
    });

    it("status reports the last runs, cursor, freshness and next scheduled runs", async () => {
      const status = await t.client(keyA).sync.status.query({ connectionId });
      expect(status.lastSync).toMatchObject({ entity: "contacts", mode: "full", status: "succeeded" });
      expect(status.failedSyncs).toBe(0);
      const contacts = status.entities.find((e) => e.entity === "contacts")!;
      expect(contacts.lastRuns.full).toMatchObject({ status: "succeeded", created: 240 });
      expect(contacts.deltaCursor).not.toBeNull();
      expect(contacts.freshnessSeconds).toBeLessThan(120);
      expect(contacts.nextRuns.delta).not.toBeNull();
      expect(contacts.nextRuns.reconcile).not.toBeNull();
      expect(status.entities.find((e) => e.entity === "companies")?.lastRuns.full).toBeNull();
    });

    it("the change feed pages through every record; one record reads by id", async () => {
      const a = t.client(keyA);
      const ids: Array<string> = [];
      let cursor: string | undefined;
      for (;;) {
        const page = await a.records.list.query({
          connectionId,
          entity: "contacts",
          limit: 100,
          ...(cursor ? { cursor } : {}),
        });
        ids.push(...page.items.flatMap((r) => r.externalId ?? []));
        cursor = page.cursor;
        if (!page.hasMore) break;
      }
      expect(new Set(ids).size).toBe(240);
      const one = await a.records.get.query({ connectionId, entity: "contacts", externalId: ids[0]! });
      expect(one).toMatchObject({ externalId: ids[0], syncStatus: "synced", deletedAt: null });
    });

    it("inbound webhooks: signed events update records; duplicates, bad signatures, malformed and oversized bodies are refused", async () => {
      const a = t.client(keyA);
      const url = `${t.server.url}/webhooks/hubspot/${connectionId}`;
      const emitter = createHubSpotWebhookEmitter({
        store: fake.fake.store,
        targetUrl: url,
        clientSecret: WEBHOOK_SECRET,
        signatureVersions: ["v3"],
      });
      const target = fake.fake.live("contacts")[5]!;
      fake.fake.store.update("contacts", target.id, { firstname: "Webhooked" });
      const deliveries = await emitter.flush();
      expect(deliveries.every((d) => d.status === 200)).toBe(true);
      await expect
        .poll(
          async () => (await a.records.get.query({ connectionId, entity: "contacts", externalId: target.id })).data,
          {
            timeout: 60_000,
          },
        )
        .toMatchObject({ firstName: "Webhooked" });

      // The same delivery again (HubSpot retries): stored once, not re-queued.
      const again = await fetch(url, { method: "POST", headers: deliveries[0]!.headers, body: deliveries[0]!.body });
      expect(again.status).toBe(200);
      expect(await again.json()).toMatchObject({ accepted: 0, duplicates: deliveries[0]!.events.length });

      const body = JSON.stringify([
        { eventId: 1, subscriptionType: "contact.propertyChange", objectId: 1, occurredAt: Date.now() },
      ]);
      const unsigned = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
      expect(unsigned.status).toBe(401);
      const oversized = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "x".repeat(70_000),
      });
      expect(oversized.status).toBe(413);
      const unknown = await fetch(`${t.server.url}/webhooks/hubspot/00000000-0000-0000-0000-000000000000`, {
        method: "POST",
        body,
      });
      expect(unknown.status).toBe(404);
      const garbage = "{not json";
      const malformed = await fetch(url, {
        method: "POST",
        headers: hubSpotSignatureHeaders({
          clientSecret: WEBHOOK_SECRET,
          method: "POST",
          uri: url,
          body: garbage,
          timestamp: Date.now(),
          versions: ["v3"],
        }),
        body: garbage,
      });
      expect(malformed.status).toBe(400);
      emitter.close();
    });

    it("inbound webhooks under concurrency: deliveries share commits, each event is stored once, and a connection deleted meanwhile answers 404 alone", async () => {
      const a = t.client(keyA);
      const doomed = await a.connections.create.mutate({
        connector: "hubspot",
        name: "crm-doomed",
        config: { baseUrl: fake.url, accessToken: hubSpotFakeToken, webhooks: { clientSecret: WEBHOOK_SECRET } },
      });
      const ids = fake.fake.live("contacts").map((c) => c.id);
      const signed = (target: string, events: ReadonlyArray<{ eventId: number | string; objectId: string }>) => {
        const url = `${t.server.url}/webhooks/hubspot/${target}`;
        const body = JSON.stringify(
          events.map((e) => ({
            eventId: e.eventId,
            subscriptionType: "contact.propertyChange",
            objectId: Number(e.objectId),
            occurredAt: Date.now(),
          })),
        );
        const headers = hubSpotSignatureHeaders({
          clientSecret: WEBHOOK_SECRET,
          method: "POST",
          uri: url,
          body,
          timestamp: Date.now(),
          versions: ["v3"],
        });
        return () => fetch(url, { method: "POST", headers, body });
      };
      // The doomed connection takes a delivery first, so its resolved config is cached: the next
      // ones pass verification and meet the deleted row only when they are stored.
      const warm = await signed(doomed.id, [{ eventId: 990_000, objectId: ids[0]! }])();
      expect(warm.status).toBe(200);
      await a.connections.delete.mutate({ id: doomed.id });

      // 30 deliveries of 5 events on the live connection, every event sent by two deliveries,
      // raced with 10 deliveries to the deleted connection.
      const live = Array.from({ length: 30 }, (_, i) =>
        signed(
          connectionId,
          Array.from({ length: 5 }, (_, j) => {
            const n = ((i % 15) * 5 + j) as number;
            return { eventId: 900_000 + n, objectId: ids[n % ids.length]! };
          }),
        ),
      );
      const gone = Array.from({ length: 10 }, (_, i) =>
        signed(doomed.id, [{ eventId: 991_000 + i, objectId: ids[i]! }]),
      );
      // An event id PostgreSQL cannot store (a NUL character) is refused alone, not with its batch.
      const unstorable = signed(connectionId, [{ eventId: "bad\u0000id", objectId: ids[0]! }]);
      const [refused, ...responses] = await Promise.all([unstorable, ...live, ...gone].map((send) => send()));
      expect(refused!.status).toBe(400);
      const liveAnswers = await Promise.all(
        responses.slice(0, 30).map(async (r) => [r.status, await r.json()] as const),
      );
      expect(liveAnswers.every(([status]) => status === 200)).toBe(true);
      const receipts = liveAnswers.map(([, body]) => body as { accepted: number; duplicates: number });
      // 75 distinct events, each accepted by exactly one of the two deliveries that carried it.
      expect(receipts.reduce((sum, r) => sum + r.accepted, 0)).toBe(75);
      expect(receipts.reduce((sum, r) => sum + r.duplicates, 0)).toBe(75);
      expect(receipts.every((r) => r.accepted + r.duplicates === 5)).toBe(true);
      expect(responses.slice(30).map((r) => r.status)).toEqual(Array.from({ length: 10 }, () => 404));
    });

    it("tenant B sees none of it", async () => {
      const b = t.client(keyB);
      expect(await trpcCode(b.sync.trigger.mutate({ connectionId, entity: "contacts", mode: "delta" }))).toBe(
        "NOT_FOUND",
      );
      expect(await trpcCode(b.sync.status.query({ connectionId }))).toBe("NOT_FOUND");
      expect(await trpcCode(b.records.list.query({ connectionId, entity: "contacts" }))).toBe("NOT_FOUND");
      const jobs = await t.client(keyA).jobs.list.query({ connectionId });
      expect(await trpcCode(b.jobs.get.query({ id: jobs[0]!.id }))).toBe("NOT_FOUND");
      expect(await trpcCode(b.jobs.cancel.mutate({ id: jobs[0]!.id }))).toBe("NOT_FOUND");
      expect(await b.jobs.list.query({})).toEqual([]);
      expect((await b.webhooks.deliveries.query({})).items).toEqual([]);
    });

    it("pause refuses triggers until resume; an unknown entity is a field error", async () => {
      const a = t.client(keyA);
      expect(await a.sync.pause.mutate({ connectionId })).toEqual({ paused: true });
      expect(await trpcCode(a.sync.trigger.mutate({ connectionId, entity: "companies", mode: "full" }))).toBe(
        "PRECONDITION_FAILED",
      );
      expect((await a.sync.status.query({ connectionId })).paused).toBe(true);
      expect(await a.sync.resume.mutate({ connectionId })).toEqual({ paused: false });
      expect(await trpcCode(a.sync.trigger.mutate({ connectionId, entity: "tickets", mode: "full" }))).toBe(
        "BAD_REQUEST",
      );
    });

    it("a job that cannot succeed lands in the dead letters, with its attempts; retry and discard", async () => {
      const a = t.client(keyA);
      const broken = await a.connections.create.mutate({
        connector: "hubspot",
        name: "broken",
        config: { baseUrl: fake.url, accessToken: "pat-revoked" },
      });
      brokenId = broken.id;
      const { jobId } = await a.sync.trigger.mutate({ connectionId: broken.id, entity: "companies", mode: "full" });
      await expect
        .poll(async () => (await a.jobs.get.query({ id: jobId })).job.status, { timeout: 60_000 })
        .toBe("dead");
      const dead = await a.deadLetters.list.query({});
      const entry = dead.find((d) => d.id === jobId)!;
      expect(entry.lastError?.tag).toBe("AuthExpired");
      expect(entry.attempts.length).toBeGreaterThan(0);
      expect((await t.client(keyB).deadLetters.list.query({})).map((d) => d.id)).not.toContain(jobId);
      expect(await trpcCode(t.client(keyB).deadLetters.retry.mutate({ id: jobId }))).toBe("NOT_FOUND");

      const retried = await a.deadLetters.retry.mutate({ id: jobId });
      expect(retried.status).toBe("queued");
      await expect
        .poll(async () => (await a.jobs.get.query({ id: jobId })).job.status, { timeout: 60_000 })
        .toBe("dead");
      expect(await a.deadLetters.discard.mutate({ id: jobId })).toEqual({ id: jobId });
      expect(await trpcCode(a.jobs.get.query({ id: jobId }))).toBe("NOT_FOUND");
    });

    it("a local edit is pushed to HubSpot: pending, then synced; never while the record is locked", async () => {
      const a = t.client(keyA);
      const target = fake.fake.live("contacts")[9]!;
      // While a pull of this record holds its lock, a push waits, then gives up. The earlier
      // tests' webhook jobs may still be syncing this record: the lease waits its turn.
      const lease = await t.server.runtime.runPromise(
        Effect.flatMap(Locks, (l) =>
          l.acquire(recordLockKey(connectionId, "contacts", target.id), { ttlMs: 60_000, waitMs: 30_000 }),
        ),
      );
      expect(
        await trpcCode(
          a.records.update.mutate({
            connectionId,
            entity: "contacts",
            externalId: target.id,
            fields: { firstName: "Blocked" },
          }),
        ),
      ).toBe("PRECONDITION_FAILED");
      await t.server.runtime.runPromise(Effect.flatMap(Locks, (l) => l.release(lease)));
      const updated = await a.records.update.mutate({
        connectionId,
        entity: "contacts",
        externalId: target.id,
        fields: { firstName: "Pushed" },
      });
      expect(["pending", "synced"]).toContain(updated.syncStatus);
      const pushed = await a.sync.trigger.mutate({ connectionId, entity: "contacts", mode: "push" });
      await expect
        .poll(async () => (await a.jobs.get.query({ id: pushed.jobId })).job.status, { timeout: 60_000 })
        .toBe("completed");
      await expect
        .poll(
          async () =>
            (await a.records.get.query({ connectionId, entity: "contacts", externalId: target.id })).syncStatus,
        )
        .toBe("synced");
      expect(fake.fake.store.get("contacts", target.id)?.properties.firstname).toBe("Pushed");
    });

    it("a pull meeting an unpushed local edit of the same field opens a conflict and sends conflict.detected", async () => {
      const a = t.client(keyA);
      const subscription = await a.webhooks.create.mutate({ url: receiver.url, events: ["conflict.detected"] });
      const target = fake.fake.live("contacts")[20]!;
      const local = await a.records.update.mutate({
        connectionId,
        entity: "contacts",
        externalId: target.id,
        fields: { jobTitle: "Local title" },
      });
      expect(local.syncStatus).toBe("pending");
      // Meanwhile the same field changes in HubSpot; the next pull meets both edits.
      fake.fake.store.update("contacts", target.id, { jobtitle: "Remote title" });
      const { jobId } = await a.sync.trigger.mutate({ connectionId, entity: "contacts", mode: "delta" });
      await expect
        .poll(async () => (await a.jobs.get.query({ id: jobId })).job.status, { timeout: 60_000 })
        .toBe("completed");

      // Manual review (the default policy): the record waits in `conflict` with its local data.
      const open = (await a.conflicts.list.query({ status: "open" })).items.filter((c) => c.externalId === target.id);
      expect(open).toHaveLength(1);
      expect((await a.records.get.query({ connectionId, entity: "contacts", externalId: target.id })).syncStatus).toBe(
        "conflict",
      );
      const detail = await a.conflicts.get.query({ id: open[0]!.id });
      expect(detail).toMatchObject({ local: { jobTitle: "Local title" }, remote: { jobTitle: "Remote title" } });

      // Its event went out once, signed, naming the record and the field.
      await expect
        .poll(
          async () =>
            (await a.webhooks.deliveries.query({ subscriptionId: subscription.id, status: "delivered", limit: 10 }))
              .items.length,
          { timeout: 30_000 },
        )
        .toBe(1);
      const delivery = receiver.received.find((r) => JSON.parse(r.body).type === "conflict.detected")!;
      expect(verifySignature(subscription.secret, delivery.headers["tandem-signature"] as string, delivery.body)).toBe(
        true,
      );
      expect(JSON.parse(delivery.body)).toMatchObject({
        type: "conflict.detected",
        data: {
          conflictId: open[0]!.id,
          connectionId,
          entity: "contacts",
          externalId: target.id,
          fields: ["jobTitle"],
          policy: "manual",
          status: "open",
        },
      });

      // Resolved for the remote side: the record takes HubSpot's value, as a local change that the
      // next push writes (the field is not critical), then it is synced again.
      const resolved = await a.conflicts.resolve.mutate({ id: open[0]!.id, resolution: { choose: "remote" } });
      expect(resolved.record).toMatchObject({ data: { jobTitle: "Remote title" } });
      const push = await a.sync.trigger.mutate({ connectionId, entity: "contacts", mode: "push" });
      await expect
        .poll(async () => (await a.jobs.get.query({ id: push.jobId })).job.status, { timeout: 60_000 })
        .toBe("completed");
      await expect
        .poll(async () => await a.records.get.query({ connectionId, entity: "contacts", externalId: target.id }), {
          timeout: 30_000,
        })
        .toMatchObject({ syncStatus: "synced", data: { jobTitle: "Remote title" } });
      expect((await a.conflicts.list.query({ status: "open" })).items.map((c) => c.externalId)).not.toContain(
        target.id,
      );
      expect(await a.webhooks.delete.mutate({ id: subscription.id })).toEqual({ id: subscription.id });
    });

    it("record events: a sync of 12 companies sends 12 record.created events", async () => {
      const a = t.client(keyA);
      const subscription = await a.webhooks.create.mutate({
        url: receiver.url,
        events: ["record.created", "record.updated"],
      });
      const { jobId } = await a.sync.trigger.mutate({ connectionId, entity: "companies", mode: "full" });
      await expect
        .poll(async () => (await a.jobs.get.query({ id: jobId })).job.status, { timeout: 60_000 })
        .toBe("completed");
      await expect
        .poll(
          async () =>
            (await a.webhooks.deliveries.query({ subscriptionId: subscription.id, status: "delivered", limit: 100 }))
              .items.length,
          { timeout: 30_000 },
        )
        .toBe(12);
      const events = receiver.received
        .map((r) => JSON.parse(r.body) as { type: string; data: { entity?: string; externalId?: string } })
        .filter((e) => e.type === "record.created" && e.data.entity === "companies");
      expect(new Set(events.map((e) => e.data.externalId)).size).toBe(12);
      expect(await a.webhooks.delete.mutate({ id: subscription.id })).toEqual({ id: subscription.id });
    });

    it("metrics over the range count the runs above exactly, per connection", async () => {
      const a = t.client(keyA);
      const day = new Date().toISOString().slice(0, 10);
      const broken = await a.sync.metrics.query({ startDate: day, endDate: day, connectionId: brokenId });
      // The dead job's first attempt and its retry: two failed runs, both AuthExpired (transient).
      expect(broken).toMatchObject({ totalSyncs: 2, failedSyncs: 2, successRate: 0 });
      expect(broken.errorsByType).toMatchObject({ transient: 2, validation: 0, business: 0, system: 0 });
      const main = await a.sync.metrics.query({ startDate: day, endDate: day, connectionId });
      expect(main.failedSyncs).toBe(0);
      expect(main.successRate).toBe(100);
      expect(main.records).toBeGreaterThanOrEqual(240);
      expect(main.throughput.reduce((n, b) => n + b.syncs, 0)).toBe(main.totalSyncs);
      expect(await trpcCode(a.sync.metrics.query({ startDate: "yesterday", endDate: day }))).toBe("BAD_REQUEST");
    });

    it("alerts: default rules, a custom rule that fires on the broken connection, tenant-scoped", async () => {
      const a = t.client(keyA);
      const rules = await a.alerts.rules.query();
      expect(rules.map((r) => r.kind).sort()).toEqual([
        "error_rate",
        "mass_deletion",
        "performance",
        "queue_backlog",
        "staleness",
        "sync_failures",
      ]);
      const rule = await a.alerts.setRule.mutate({
        name: "broken failures",
        kind: "sync_failures",
        connectionId: brokenId,
        params: { failures: 2, windowMinutes: 60 },
      });
      expect(rule).toMatchObject({ kind: "sync_failures", enabled: true });
      expect(await trpcCode(a.alerts.setRule.mutate({ kind: "sync_failures", params: { failures: -1 } }))).toBe(
        "BAD_REQUEST",
      );
      await expect
        .poll(async () => (await a.alerts.list.query({ status: "firing", ruleId: rule.id })).items.length, {
          timeout: 30_000,
        })
        .toBe(1);
      // Evaluated again and again, the alert is stored once.
      await new Promise((r) => setTimeout(r, 4_500));
      expect((await a.alerts.list.query({ ruleId: rule.id })).items).toHaveLength(1);
      expect((await t.client(keyB).alerts.list.query({})).items).toEqual([]);
    });

    it("outbound subscriptions: list, replay a delivery, delete", async () => {
      const a = t.client(keyA);
      const [subscription] = await a.webhooks.list.query();
      const [delivery] = (await a.webhooks.deliveries.query({ subscriptionId: subscription!.id })).items;
      const before = receiver.received.length;
      expect((await a.webhooks.replay.mutate({ deliveryId: delivery!.id })).status).toBe("pending");
      await expect.poll(() => receiver.received.length, { timeout: 60_000 }).toBeGreaterThan(before);
      expect(await trpcCode(t.client(keyB).webhooks.delete.mutate({ id: subscription!.id }))).toBe("NOT_FOUND");
      expect(await a.webhooks.delete.mutate({ id: subscription!.id })).toEqual({ id: subscription!.id });
      expect(await a.webhooks.list.query()).toEqual([]);
    });

    it("GET /metrics reports sync runs, queue jobs and freshness", async () => {
      const text = await (
        await fetch(`${t.server.url}/metrics`, { headers: { authorization: `Bearer ${t.adminKey}` } })
      ).text();
      expect(text).toMatch(/tandem_sync_runs_total\{[^}]*status="succeeded"[^}]*\} \d+/);
      expect(text).toContain("# TYPE tandem_sync_run_duration_seconds histogram");
      expect(text).toMatch(
        new RegExp(`tandem_freshness_seconds\\{[^}]*connection="${connectionId}",entity="contacts"\\} \\d+`),
      );
      expect(text).toContain("# TYPE tandem_queue_jobs gauge");
    });

    it("conflicts: none open after clean syncs; unknown ids are NOT_FOUND", async () => {
      const a = t.client(keyA);
      expect((await a.conflicts.list.query({ status: "open" })).items).toEqual([]);
      const missing = "00000000-0000-4000-8000-000000000000";
      expect(await trpcCode(a.conflicts.get.query({ id: missing }))).toBe("NOT_FOUND");
      expect(await trpcCode(a.conflicts.resolve.mutate({ id: missing, resolution: { choose: "local" } }))).toBe(
        "NOT_FOUND",
      );
    });
  });
}
