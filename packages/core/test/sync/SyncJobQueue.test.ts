import { expect, layer } from "@effect/vitest";
import {
  defineSyncJob,
  JobQueue,
  RetryPolicy,
  RetryPolicyConfig,
  registerSyncJob,
  Scheduler,
  SyncJobQueue,
  scheduleSyncJob,
  syncIntervals,
  triggerSync,
} from "@tandem/core";
import { dialects, testDatabaseLayer } from "@tandem/testkit";
import { Effect, Layer } from "effect";
import { describe, it as plainIt } from "vitest";
import { intervalCron } from "../../src/sync/intervalCron.ts";

const rejection = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (e: unknown) => e,
  );

const engineLayer = (dialect: (typeof dialects)[number]) =>
  SyncJobQueue.layerNoDeps.pipe(
    Layer.provideMerge(Scheduler.layerNoDeps),
    Layer.provideMerge(JobQueue.layerNoDeps),
    Layer.provideMerge(
      RetryPolicy.layer.pipe(
        Layer.provide(Layer.succeed(RetryPolicyConfig, { baseDelayMs: 1, maxDelayMs: 5, defaultMaxAttempts: 2 })),
      ),
    ),
    Layer.provideMerge(testDatabaseLayer(dialect)),
  );

/** A worker with SyncJobQueue's handler, for the test's scope. */
const worker = Effect.flatMap(SyncJobQueue, (syncJobs) =>
  Effect.flatMap(JobQueue, (queue) => queue.worker({ handlers: syncJobs.handlers, pollMs: 50 })),
);

describe("intervalCron", () => {
  plainIt("an interval that divides a minute, an hour or a day becomes cron; others do not", () => {
    expect(intervalCron(1_000)).toBe("* * * * * *");
    expect(intervalCron(15_000)).toBe("*/15 * * * * *");
    const cronOf = (i: ReturnType<typeof syncIntervals.minutes>) => intervalCron((i as { millis: number }).millis);
    expect(cronOf(syncIntervals.minutes(1))).toBe("* * * * *");
    expect(cronOf(syncIntervals.minutes(30))).toBe("*/30 * * * *");
    expect(cronOf(syncIntervals.hours(1))).toBe("0 * * * *");
    expect(cronOf(syncIntervals.hours(6))).toBe("0 */6 * * *");
    expect(cronOf(syncIntervals.days(1))).toBe("0 0 * * *");
    for (const i of [
      syncIntervals.minutes(45),
      syncIntervals.hours(5),
      syncIntervals.days(2),
      syncIntervals.minutes(0.01),
    ]) {
      expect(cronOf(i)).toBeUndefined();
    }
  });
});

for (const dialect of dialects) {
  layer(engineLayer(dialect), { timeout: 60_000, excludeTestServices: true })(`SyncJobQueue on ${dialect}`, (it) => {
    it.scoped("triggerSync on an engine is a durable job: concurrent triggers share it, its result comes back", () =>
      Effect.gen(function* () {
        yield* worker;
        let starts = 0;
        const name = `durable-${dialect}`;
        registerSyncJob(
          defineSyncJob<{ id: string }, unknown>({
            name,
            fetchExternal: async function* () {
              await new Promise((r) => setTimeout(r, 200));
              yield* [{ id: "a" }, { id: "b" }];
            },
            getExternalId: (i) => i.id,
            findLocal: () => null,
            create: () => {},
            update: () => {},
            onStart: () => {
              starts++;
            },
          }),
        );
        const [a, b] = yield* Effect.promise(() => Promise.all([triggerSync(name), triggerSync(name)]));
        expect(a).toMatchObject({ name, created: 2, errors: [] });
        expect(b).toEqual(a);
        expect(starts).toBe(1);
        const jobs = yield* Effect.flatMap(JobQueue, (q) => q.list({ kind: "sync-job" }));
        const ours = jobs.filter((j) => (j.payload as { name: string }).name === name);
        expect(ours.map((j) => j.status)).toEqual(["completed"]);
        expect(ours[0]?.dedupeKey).toBe(`sync-job:${name}`);
        const unknown = yield* Effect.promise(() => rejection(triggerSync("nope")));
        expect(unknown).toMatchObject({ _tag: "UnknownSyncJob", message: 'no sync job named "nope" is registered' });
      }),
    );

    it.scoped("a source that keeps failing is retried, then triggerSync rejects with SyncSourceFailed", () =>
      Effect.gen(function* () {
        yield* worker;
        let attempts = 0;
        const name = `failing-${dialect}`;
        registerSyncJob(
          defineSyncJob<{ id: string }, unknown>({
            name,
            fetchExternal: async () => {
              attempts++;
              throw new Error("ERP is down");
            },
            getExternalId: (i) => i.id,
            findLocal: () => null,
            create: () => {},
            update: () => {},
          }),
        );
        const error = yield* Effect.promise(() => rejection(triggerSync(name)));
        expect(error).toMatchObject({ _tag: "SyncSourceFailed", name, type: "SyncSourceFailed" });
        expect(String((error as Error).message)).toContain("ERP is down");
        expect(attempts).toBe(2);
      }),
    );

    it.scoped("scheduleSyncJob on an engine is a stored schedule; stop removes it; odd intervals are refused", () =>
      Effect.gen(function* () {
        const scheduler = yield* Scheduler;
        const name = `scheduled-${dialect}`;
        registerSyncJob(
          defineSyncJob<{ id: string }, unknown>({
            name,
            fetchExternal: () => [],
            getExternalId: (i) => i.id,
            findLocal: () => null,
            create: () => {},
            update: () => {},
          }),
        );
        const handle = yield* Effect.promise(() => scheduleSyncJob(name, syncIntervals.hours(6)));
        const view = yield* scheduler.get(`sync-job:${name}`);
        expect(view).toMatchObject({ cron: "0 */6 * * *", kind: "sync-job", payload: { name } });
        yield* Effect.promise(() => scheduleSyncJob(name, "*/5 * * * *"));
        expect((yield* scheduler.get(`sync-job:${name}`)).cron).toBe("*/5 * * * *");
        yield* Effect.promise(() => handle.stop());
        expect((yield* scheduler.get(`sync-job:${name}`).pipe(Effect.flip))._tag).toBe("ResourceNotFound");

        const odd = yield* Effect.promise(() => rejection(scheduleSyncJob(name, syncIntervals.minutes(45))));
        expect(odd).toMatchObject({ _tag: "InvalidSchedule", expression: "every 45 minutes" });
        expect(String((odd as Error).message)).toContain("must divide a minute, an hour or a day");
        const invalid = yield* Effect.promise(() => rejection(scheduleSyncJob(name, "every now and then")));
        expect(invalid).toMatchObject({ _tag: "InvalidSchedule", expression: "every now and then" });
        const unknown = yield* Effect.promise(() => rejection(scheduleSyncJob("nope", syncIntervals.hours(1))));
        expect(unknown).toMatchObject({ _tag: "UnknownSyncJob" });
        expect(yield* scheduler.list()).toEqual([]);
      }),
    );
  });
}
