import { expect, layer } from "@effect/vitest";
import {
  ALERTS_EVALUATE_JOB_KIND,
  ALERTS_SCHEDULE_NAME,
  type AlertRuleInput,
  Alerts,
  Database,
  JobQueue,
  OutboundWebhooks,
  RunHistory,
  registerAlertsSchedule,
  Scheduler,
} from "@tandem/core";
import { dialects, loopbackEgressOptions, testEngineLayer } from "@tandem/testkit";
import { Clock, Effect, TestClock, TestServices } from "effect";
import { makeTenant, type RunSpec, recordRun } from "../fixtures/runHistory.ts";

const services = (dialect: (typeof dialects)[number]) =>
  testEngineLayer({ dialect, connectors: [], config: { egress: loopbackEgressOptions } });

const MINUTE = 60_000;
/** The suite's tests share one TestClock: times are asserted relative to a test's start. */
const at = (t0: number, ms: number) => new Date(t0 + ms).toISOString();

/** A tenant with connections, a subscription to alert events, and one rule. */
const setup = (rule: AlertRuleInput, connections = 1) =>
  Effect.gen(function* () {
    const { tenantId, connectionIds } = yield* makeTenant(connections);
    // Nothing is delivered here: the outbox rows are what the tests read.
    yield* (yield* OutboundWebhooks).create(tenantId, {
      url: "http://127.0.0.1:9/alerts",
      events: ["alert.triggered", "alert.resolved"],
    });
    const set = yield* (yield* Alerts).setRule(tenantId, {
      ...rule,
      connectionId: rule.connectionId === "first" ? connectionIds[0]! : rule.connectionId,
    });
    return { tenantId, connectionIds, ruleId: set.id };
  });

/** One evaluation of the tenant; asserts what it did. */
const evaluate = (tenantId: string, expected: { triggered: number; resolved: number }) =>
  Effect.gen(function* () {
    const summary = yield* (yield* Alerts).evaluate(tenantId);
    expect({ triggered: summary.triggered, resolved: summary.resolved }).toEqual(expected);
  });

/** The alert events queued for the tenant's subscribers, oldest first. */
const events = (tenantId: string) =>
  Effect.gen(function* () {
    const log = yield* (yield* OutboundWebhooks).deliveries(tenantId, {});
    const db = yield* Database;
    const rows = yield* db
      .query((k) =>
        k
          .selectFrom("webhook_deliveries")
          .select(["event_type", "payload"])
          .where("tenant_id", "=", tenantId)
          .orderBy("seq")
          .execute(),
      )
      .pipe(Effect.orDie);
    expect(log.items).toHaveLength(rows.length);
    return rows.map((r) => ({ type: r.event_type, data: (r.payload as { data: Record<string, unknown> }).data }));
  });

const alertRows = (tenantId: string) =>
  Effect.flatMap(Database, (db) =>
    db.query((k) => k.selectFrom("alerts").selectAll().where("tenant_id", "=", tenantId).execute()),
  ).pipe(Effect.orDie);

const run = (
  tenantId: string,
  connectionId: string,
  outcome: RunSpec["outcome"],
  over: Partial<Pick<RunSpec, "entity" | "mode" | "durationMs">> = {},
) => recordRun({ tenantId, connectionId, entity: "contacts", mode: "delta", durationMs: 1_000, outcome, ...over });

const ok = { succeeded: {} };
const failed = { failed: "Unavailable" };

for (const dialect of dialects) {
  layer(services(dialect), { timeout: 60_000 })(`Alerts on ${dialect}`, (it) => {
    it.effect("sync_failures: fires once, stays quiet while unchanged, resolves once; disabling resolves too", () =>
      Effect.gen(function* () {
        const alerts = yield* Alerts;
        const t0 = yield* Clock.currentTimeMillis;
        const { tenantId, connectionIds, ruleId } = yield* setup({
          kind: "sync_failures",
          name: "failures",
          params: { failures: 2, windowMinutes: 10 },
        });
        const [c1] = connectionIds as [string];
        yield* run(tenantId, c1, failed);
        yield* evaluate(tenantId, { triggered: 0, resolved: 0 });
        yield* run(tenantId, c1, failed);
        yield* run(tenantId, c1, failed, { entity: "companies" });
        yield* evaluate(tenantId, { triggered: 1, resolved: 0 });
        yield* evaluate(tenantId, { triggered: 0, resolved: 0 });
        yield* run(tenantId, c1, failed);
        yield* evaluate(tenantId, { triggered: 0, resolved: 0 });

        const firing = yield* alerts.list(tenantId, { status: "firing" });
        expect(firing.items).toHaveLength(1);
        expect(firing.items[0]).toMatchObject({
          ruleId,
          ruleName: "failures",
          kind: "sync_failures",
          subject: `${c1}:contacts`,
          connectionId: c1,
          entity: "contacts",
          status: "firing",
          details: { failedRuns: 2, failures: 2, windowMinutes: 10, lastFailureAt: at(t0, 2_000) },
          openedAt: at(t0, 3_000),
          resolvedAt: null,
        });

        // The failures age out of the window: resolved once.
        yield* TestClock.adjust(10 * MINUTE);
        yield* evaluate(tenantId, { triggered: 0, resolved: 1 });
        yield* evaluate(tenantId, { triggered: 0, resolved: 0 });
        const [resolved] = (yield* alerts.list(tenantId)).items;
        expect(resolved).toMatchObject({
          status: "resolved",
          resolution: { reason: "recovered" },
          resolvedAt: at(t0, 10 * MINUTE + 4_000),
        });

        const sent = yield* events(tenantId);
        expect(sent.map((e) => e.type)).toEqual(["alert.triggered", "alert.resolved"]);
        expect(sent[0]?.data).toMatchObject({
          alertId: resolved?.id,
          ruleId,
          ruleName: "failures",
          kind: "sync_failures",
          subject: `${c1}:contacts`,
          details: { failedRuns: 2 },
        });
        expect(sent[1]?.data).toMatchObject({
          alertId: resolved?.id,
          resolvedAt: at(t0, 10 * MINUTE + 4_000),
          resolution: { reason: "recovered" },
        });

        // Firing again is a new alert; disabling the rule resolves it, once.
        yield* run(tenantId, c1, failed);
        yield* run(tenantId, c1, failed);
        yield* evaluate(tenantId, { triggered: 1, resolved: 0 });
        yield* alerts.setRule(tenantId, { id: ruleId, kind: "sync_failures", enabled: false });
        yield* evaluate(tenantId, { triggered: 0, resolved: 1 });
        yield* evaluate(tenantId, { triggered: 0, resolved: 0 });
        const page = yield* alerts.list(tenantId, { limit: 1 });
        expect(page.items).toHaveLength(1);
        const rest = yield* alerts.list(tenantId, { cursor: page.nextCursor! });
        expect(rest).toMatchObject({ items: [{ id: resolved?.id }], nextCursor: null });
        expect((yield* Effect.flip(alerts.list(tenantId, { cursor: "x" }))).issues[0]?.path).toBe("cursor");
        const all = yield* alerts.list(tenantId);
        expect(all.items.map((a) => [a.status, a.resolution])).toEqual([
          ["resolved", { reason: "rule disabled" }],
          ["resolved", { reason: "recovered" }],
        ]);
        expect((yield* events(tenantId)).map((e) => e.type)).toEqual([
          "alert.triggered",
          "alert.resolved",
          "alert.triggered",
          "alert.resolved",
        ]);
      }),
    );

    it.effect("error_rate: fires above the threshold with enough runs, resolves when the share falls", () =>
      Effect.gen(function* () {
        const { tenantId, connectionIds } = yield* setup({
          kind: "error_rate",
          params: { thresholdPercent: 50, windowMinutes: 60, minRuns: 2 },
        });
        const [c1] = connectionIds as [string];
        yield* run(tenantId, c1, failed, { entity: "companies" }); // one run: below minRuns
        yield* run(tenantId, c1, ok);
        yield* run(tenantId, c1, failed);
        yield* evaluate(tenantId, { triggered: 0, resolved: 0 }); // 50% is not above 50%
        yield* run(tenantId, c1, failed);
        yield* evaluate(tenantId, { triggered: 1, resolved: 0 });
        yield* evaluate(tenantId, { triggered: 0, resolved: 0 });
        const [alert] = (yield* (yield* Alerts).list(tenantId)).items;
        expect(alert).toMatchObject({
          subject: `${c1}:contacts`,
          details: { failedRuns: 2, finishedRuns: 3, errorRatePercent: 66.67, thresholdPercent: 50 },
        });
        yield* run(tenantId, c1, ok);
        yield* run(tenantId, c1, ok);
        yield* evaluate(tenantId, { triggered: 0, resolved: 1 }); // 2 of 5: 40%
        yield* evaluate(tenantId, { triggered: 0, resolved: 0 });
        expect((yield* events(tenantId)).map((e) => e.type)).toEqual(["alert.triggered", "alert.resolved"]);
      }),
    );

    it.effect("queue_backlog: fires on too many queued jobs or a due job waiting too long", () =>
      Effect.gen(function* () {
        const queue = yield* JobQueue;
        const t0 = yield* Clock.currentTimeMillis;
        const { tenantId, connectionIds } = yield* setup({
          kind: "queue_backlog",
          connectionId: "first",
          params: { maxQueued: 2, maxWaitMinutes: 5 },
        });
        const [c1] = connectionIds as [string];
        const enqueue = (over: { runAt?: Date; connectionId?: string } = {}) =>
          queue.enqueue({ kind: "sync", tenantId, connectionId: c1, ...over }).pipe(Effect.orDie);
        const a = yield* enqueue();
        const b = yield* enqueue({ runAt: new Date(t0 + 60 * MINUTE) }); // waiting for a retry: not late
        yield* queue.enqueue({ kind: "sync", tenantId }).pipe(Effect.orDie); // outside the rule's connection
        yield* evaluate(tenantId, { triggered: 0, resolved: 0 });
        const c = yield* enqueue();
        yield* evaluate(tenantId, { triggered: 1, resolved: 0 });
        yield* evaluate(tenantId, { triggered: 0, resolved: 0 });
        yield* queue.cancel(c.id);
        yield* evaluate(tenantId, { triggered: 0, resolved: 1 });

        // Six minutes on, the due job has waited too long; the one scheduled later has not.
        yield* TestClock.adjust(6 * MINUTE);
        yield* evaluate(tenantId, { triggered: 1, resolved: 0 });
        const [late] = (yield* (yield* Alerts).list(tenantId, { status: "firing" })).items;
        expect(late).toMatchObject({
          subject: `connection:${c1}`,
          details: { queued: 2, maxQueued: 2, oldestWaitSeconds: 360, maxWaitMinutes: 5 },
        });
        yield* queue.cancel(a.id);
        yield* evaluate(tenantId, { triggered: 0, resolved: 1 });
        yield* queue.cancel(b.id);
        yield* evaluate(tenantId, { triggered: 0, resolved: 0 });
        expect((yield* events(tenantId)).map((e) => e.type)).toEqual([
          "alert.triggered",
          "alert.resolved",
          "alert.triggered",
          "alert.resolved",
        ]);
      }),
    );

    it.effect("staleness: fires when no full or delta run succeeded for too long; skips paused connections", () =>
      Effect.gen(function* () {
        const t0 = yield* Clock.currentTimeMillis;
        const { tenantId, connectionIds } = yield* setup({ kind: "staleness", params: { maxAgeMinutes: 30 } }, 2);
        const [c1, paused] = connectionIds as [string, string];
        yield* run(tenantId, c1, ok, { mode: "full" }); // finishes at 1 s
        yield* run(tenantId, paused, ok);
        yield* Effect.flatMap(Database, (db) =>
          db.query((k) => k.updateTable("connections").set({ paused: true }).where("id", "=", paused).execute()),
        ).pipe(Effect.orDie);
        yield* TestClock.adjust(29 * MINUTE);
        yield* run(tenantId, c1, ok, { mode: "reconcile" }); // not a full or delta: does not refresh
        yield* evaluate(tenantId, { triggered: 0, resolved: 0 });
        yield* TestClock.adjust(MINUTE);
        yield* evaluate(tenantId, { triggered: 1, resolved: 0 });
        yield* evaluate(tenantId, { triggered: 0, resolved: 0 });
        const alerts = yield* alertRows(tenantId);
        expect(alerts).toHaveLength(1);
        expect(alerts[0]?.details).toEqual({
          lastSuccessAt: at(t0, 1_000),
          secondsSinceLastSuccess: 30 * 60 + 2,
          maxAgeMinutes: 30,
        });
        expect(alerts[0]?.subject).toBe(`${c1}:contacts`);
        yield* run(tenantId, c1, ok);
        yield* evaluate(tenantId, { triggered: 0, resolved: 1 });
        yield* evaluate(tenantId, { triggered: 0, resolved: 0 });
        expect((yield* events(tenantId)).map((e) => e.type)).toEqual(["alert.triggered", "alert.resolved"]);
      }),
    );

    it.effect("performance: fires when a run takes over k x the median of its recent runs, per mode", () =>
      Effect.gen(function* () {
        const { tenantId, connectionIds } = yield* setup({
          kind: "performance",
          params: { factor: 2, samples: 3, minSamples: 3, minDurationMs: 1_000 },
        });
        const [c1] = connectionIds as [string];
        const delta = (ms: number) => run(tenantId, c1, ok, { durationMs: ms });
        yield* delta(2_000);
        yield* delta(2_000);
        yield* delta(5_000); // only two samples before it: not judged
        yield* evaluate(tenantId, { triggered: 0, resolved: 0 });
        yield* delta(4_000); // median of 2, 2, 5 s is 2 s: 4 s is not over 2x
        yield* evaluate(tenantId, { triggered: 0, resolved: 0 });
        yield* run(tenantId, c1, ok, { mode: "full", durationMs: 60_000 }); // another mode, no history
        const slow = yield* delta(9_000); // median of 2, 5, 4 s is 4 s
        yield* evaluate(tenantId, { triggered: 1, resolved: 0 });
        yield* evaluate(tenantId, { triggered: 0, resolved: 0 });
        const [alert] = (yield* (yield* Alerts).list(tenantId)).items;
        expect(alert).toMatchObject({
          subject: `${c1}:contacts:delta`,
          mode: "delta",
          details: { runId: slow, durationMs: 9_000, medianMs: 4_000, samples: 3, factor: 2 },
        });
        yield* delta(3_000); // median of 5, 4, 9 s is 5 s
        yield* evaluate(tenantId, { triggered: 0, resolved: 1 });
        yield* evaluate(tenantId, { triggered: 0, resolved: 0 });
        expect((yield* events(tenantId)).map((e) => e.type)).toEqual(["alert.triggered", "alert.resolved"]);
      }),
    );

    it.effect("concurrent evaluations fire and resolve each alert once", () =>
      Effect.gen(function* () {
        const alerts = yield* Alerts;
        const { tenantId, connectionIds } = yield* setup({
          kind: "sync_failures",
          params: { failures: 1, windowMinutes: 5 },
        });
        const [c1] = connectionIds as [string];
        yield* run(tenantId, c1, failed);
        yield* run(tenantId, c1, failed, { entity: "companies" });
        const together = Effect.all(
          Array.from({ length: 4 }, () => alerts.evaluate(tenantId)),
          { concurrency: "unbounded" },
        );
        const fired = yield* together;
        expect(fired.reduce((n, s) => n + s.triggered, 0)).toBe(2);
        expect(yield* alertRows(tenantId)).toHaveLength(2);
        yield* TestClock.adjust(6 * MINUTE);
        const cleared = yield* together;
        expect(cleared.reduce((n, s) => n + s.resolved, 0)).toBe(2);
        expect((yield* events(tenantId)).map((e) => e.type).sort()).toEqual([
          "alert.resolved",
          "alert.resolved",
          "alert.triggered",
          "alert.triggered",
        ]);
      }),
    );

    it.effect("rules: validated per kind, scoped to the tenant's connections, defaults added once", () =>
      Effect.gen(function* () {
        const alerts = yield* Alerts;
        const { tenantId } = yield* makeTenant(1);
        const other = yield* makeTenant(1);
        const bad = yield* Effect.flip(
          alerts.setRule(tenantId, { kind: "error_rate", params: { thresholdPercent: 150, windowMinutes: 0 } }),
        );
        expect(bad._tag).toBe("InvalidInput");
        expect(bad._tag === "InvalidInput" && bad.issues.map((i) => i.path).sort()).toEqual([
          "params.thresholdPercent",
          "params.windowMinutes",
        ]);
        const unknown = yield* Effect.flip(alerts.setRule(tenantId, { kind: "staleness", params: { maxAge: 5 } }));
        expect(unknown._tag === "InvalidInput" && unknown.issues.map((i) => i.path)).toEqual(["params.maxAge"]);
        const kind = yield* Effect.flip(alerts.setRule(tenantId, { kind: "nope" as "staleness" }));
        expect(kind._tag === "InvalidInput" && kind.issues.map((i) => i.path)).toEqual(["kind"]);
        const foreign = yield* Effect.flip(
          alerts.setRule(tenantId, { kind: "staleness", connectionId: other.connectionIds[0]! }),
        );
        expect(foreign._tag).toBe("ResourceNotFound");

        const set = yield* alerts.setRule(tenantId, { kind: "staleness", params: { maxAgeMinutes: 45 } });
        expect(set).toMatchObject({ name: "staleness", params: { maxAgeMinutes: 45 }, enabled: true });
        const replaced = yield* alerts.setRule(tenantId, { kind: "staleness" });
        expect(replaced).toMatchObject({ id: set.id, params: { maxAgeMinutes: 120 } });
        expect((yield* Effect.flip(alerts.setRule(other.tenantId, { id: set.id, kind: "staleness" })))._tag).toBe(
          "ResourceNotFound",
        );

        const defaults = yield* alerts.ensureDefaultRules(tenantId);
        expect(defaults.map((r) => r.name)).toEqual([
          "default: error rate",
          "default: mass deletion",
          "default: performance",
          "default: queue backlog",
          "default: staleness",
          "default: sync failures",
          "staleness",
        ]);
        expect(defaults.find((r) => r.kind === "performance")?.params).toEqual({
          factor: 3,
          samples: 10,
          minSamples: 5,
          minDurationMs: 1_000,
        });
        expect(yield* alerts.ensureDefaultRules(tenantId)).toHaveLength(7);
        expect(yield* alerts.rules(other.tenantId)).toEqual([]);
        const renamed = yield* Effect.flip(
          alerts.setRule(tenantId, { id: set.id, name: "default: staleness", kind: "staleness" }),
        );
        expect(renamed._tag).toBe("AlreadyExists");
      }),
    );

    // Last: it evaluates every tenant of this database, on the real clock.
    it.effect("the schedule's job runs the evaluation through a worker", () =>
      TestServices.provideLive(
        Effect.gen(function* () {
          const alerts = yield* Alerts;
          const queue = yield* JobQueue;
          const scheduler = yield* Scheduler;
          const { tenantId, connectionIds } = yield* setup({
            kind: "sync_failures",
            params: { failures: 1, windowMinutes: 5 },
          });
          const runs = yield* RunHistory;
          const runId = yield* runs.start({
            tenantId,
            connectionId: connectionIds[0]!,
            entity: "contacts",
            mode: "delta",
            trigger: "schedule",
            jobId: null,
            attempt: 1,
          });
          yield* runs.fail(runId, { tag: "Unavailable", message: "down" });
          const schedule = yield* registerAlertsSchedule({ cron: "* * * * * *" });
          expect(schedule).toMatchObject({ name: ALERTS_SCHEDULE_NAME, kind: ALERTS_EVALUATE_JOB_KIND });
          expect((yield* registerAlertsSchedule()).cron).toBe("* * * * *");
          yield* registerAlertsSchedule({ cron: "* * * * * *" });
          yield* Effect.promise(() => new Promise((r) => setTimeout(r, 1_100)));
          expect(yield* scheduler.fireDue).toBe(1);
          yield* Effect.scoped(
            Effect.gen(function* () {
              yield* queue.worker({ handlers: alerts.handlers, pollMs: 50 });
              for (let i = 0; i < 200; i++) {
                if ((yield* alertRows(tenantId)).length > 0) break;
                yield* Effect.promise(() => new Promise((r) => setTimeout(r, 25)));
              }
            }),
          );
          expect((yield* events(tenantId)).map((e) => e.type)).toEqual(["alert.triggered"]);
          const [job] = yield* queue.list({ kind: ALERTS_EVALUATE_JOB_KIND });
          expect(job).toMatchObject({ status: "completed", result: { triggered: expect.any(Number) } });
        }),
      ),
    );
  });
}
