import { sourceStream } from "@tandem/connector-sdk/runtime";
import { Cause, Clock, Effect, Exit, Fiber, Option, Runtime, Schedule, Schema, Stream } from "effect";
import cron from "node-cron";
import { definitionOf, durableSyncJobs, registerDefinition } from "./SyncJobRegistry.ts";

/** One item that failed; the run went on without it. */
export interface SyncItemError {
  /** The item's external id, or "unknown" when it could not be determined. */
  readonly externalId: string;
  /** The error's tag (`InvalidRecord`, `Unavailable`, ...) or class name. */
  readonly type: string;
  readonly message: string;
}

/** What a sync run did. */
export interface SyncResult {
  readonly name: string;
  readonly created: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly deleted: number;
  readonly errors: ReadonlyArray<SyncItemError>;
  readonly durationMs: number;
}

/** What `syncSingleItem` did with one item. */
export interface SingleItemResult {
  readonly action: "created" | "updated" | "unchanged" | "deleted" | "skipped" | "failed";
  readonly externalId: string;
  readonly error?: SyncItemError;
}

/** A value a hook may return: nothing, a Promise, or an Effect. */
type Hooked<A> = A | Promise<A> | Effect.Effect<A, unknown>;

/** What `fetchExternal` may return: an array, an async generator, a Promise of an array, an Effect, or a Stream. */
export type ExternalSource<Ext> =
  | Iterable<Ext>
  | AsyncIterable<Ext>
  | Promise<Iterable<Ext>>
  | Effect.Effect<Iterable<Ext>, unknown>
  | Stream.Stream<Ext, unknown>;

/**
 * A sync job (seeds/003, the Sync Runner): a source of external items and a
 * sink that matches each to a local record. Every function may be async or
 * return an Effect.
 */
export interface SyncJob<Ext, Local> {
  /** Unique among registered jobs; names the job in results, triggers and schedules. */
  readonly name: string;
  /** Every external item, in any of the forms of `ExternalSource`. Streamed: items are never all held at once. */
  readonly fetchExternal: () => ExternalSource<Ext>;
  readonly getExternalId: (item: Ext) => string;
  /** The local record matching an external id, or null. */
  readonly findLocal: (externalId: string) => Hooked<Local | null | undefined>;
  readonly create: (item: Ext) => Hooked<unknown>;
  /** Updates `local` from `item`. Return `false` to report the item as unchanged (nothing written). */
  readonly update: (item: Ext, local: Local) => Hooked<unknown>;
  /** Removes `local`; called for items `isDeleted` reports as deleted at the source. */
  readonly delete?: (local: Local, item: Ext) => Hooked<unknown>;
  /** Whether the source marks this item deleted (archived, tombstone). Default: never. */
  readonly isDeleted?: (item: Ext) => boolean;
  readonly onStart?: () => Hooked<unknown>;
  /** Called with the result of every run that completes (item errors included). */
  readonly onComplete?: (result: SyncResult) => Hooked<unknown>;
}

/** Declares a sync job. An identity function for inference and documentation. */
export const defineSyncJob = <Ext, Local>(job: SyncJob<Ext, Local>): SyncJob<Ext, Local> => job;

/** `triggerSync` / `scheduleSyncJob` named a job that was never registered. */
export class UnknownSyncJob extends Schema.TaggedError<UnknownSyncJob>()("UnknownSyncJob", { name: Schema.String }) {
  override get message() {
    return `no sync job named "${this.name}" is registered`;
  }
}

/** `fetchExternal` itself failed: the run could not read its source at all. */
export class SyncSourceFailed extends Schema.TaggedError<SyncSourceFailed>()("SyncSourceFailed", {
  name: Schema.String,
  type: Schema.String,
  message: Schema.String,
}) {}

/**
 * `scheduleSyncJob` got a cron expression that cannot be parsed, or, on an engine, an interval
 * no cron expression ticks at (`reason` says which).
 */
export class InvalidSchedule extends Schema.TaggedError<InvalidSchedule>()("InvalidSchedule", {
  expression: Schema.String,
  reason: Schema.optional(Schema.String),
}) {
  override get message() {
    return this.reason ?? `invalid cron expression "${this.expression}" (five or six fields, e.g. "0 * * * *")`;
  }
}

/** A schedule: a fixed interval (from `syncIntervals`) or a cron expression ("0 * * * *"). */
export type SyncInterval = { readonly _tag: "Interval"; readonly millis: number } | string;

/** Intervals for `scheduleSyncJob`. */
export const syncIntervals = {
  minutes: (n: number): SyncInterval => ({ _tag: "Interval", millis: n * 60_000 }),
  hours: (n: number): SyncInterval => ({ _tag: "Interval", millis: n * 3_600_000 }),
  days: (n: number): SyncInterval => ({ _tag: "Interval", millis: n * 86_400_000 }),
};

/** The tag or class name of anything thrown or failed with. */
const errorType = (e: unknown): string => {
  if (typeof e === "object" && e !== null) {
    const tag = (e as { _tag?: unknown })._tag;
    if (typeof tag === "string") return tag;
    if (e instanceof Error) return e.name;
  }
  return "Error";
};

/** The message of anything thrown or failed with. */
const errorText = (e: unknown): string =>
  e instanceof Error
    ? e.message
    : typeof e === "object" && e !== null && "message" in e
      ? String(e.message)
      : String(e);

/** Runs a user function returning a value, a Promise or an Effect; a throw becomes a failure. */
const hook = <A>(f: () => Hooked<A>): Effect.Effect<A, unknown> =>
  Effect.suspend(() => {
    let value: Hooked<A>;
    try {
      value = f();
    } catch (e) {
      return Effect.fail(e);
    }
    if (Effect.isEffect(value)) return value as Effect.Effect<A, unknown>;
    if (value instanceof Promise) return Effect.tryPromise({ try: () => value as Promise<A>, catch: (e) => e });
    return Effect.succeed(value as A);
  });

const externalStream = <Ext>(job: SyncJob<Ext, unknown>): Stream.Stream<Ext, unknown> =>
  Stream.suspend(() => {
    let source: ExternalSource<Ext>;
    try {
      source = job.fetchExternal();
    } catch (e) {
      return Stream.fail(e);
    }
    if (Stream.StreamTypeId in (source as object)) return source as Stream.Stream<Ext, unknown>;
    if (Effect.isEffect(source))
      return Stream.flatMap(Stream.fromEffect(source), (items) => Stream.fromIterable(items));
    if (source instanceof Promise) {
      return Stream.flatMap(
        Stream.fromEffect(Effect.tryPromise({ try: () => source, catch: (e) => e })),
        Stream.fromIterable,
      );
    }
    if (typeof (source as AsyncIterable<Ext>)[Symbol.asyncIterator] === "function") {
      return sourceStream(() => source as AsyncIterable<Ext>);
    }
    return Stream.fromIterable(source as Iterable<Ext>);
  });

const safeId = <Ext>(job: SyncJob<Ext, unknown>, item: Ext): string => {
  try {
    const id = job.getExternalId(item);
    return typeof id === "string" || typeof id === "number" ? String(id) : "unknown";
  } catch {
    return "unknown";
  }
};

const syncItem = <Ext, Local>(job: SyncJob<Ext, Local>, item: Ext): Effect.Effect<SingleItemResult> => {
  const externalId = safeId(job as SyncJob<Ext, unknown>, item);
  return Effect.gen(function* () {
    if (externalId === "unknown") return yield* Effect.fail(new Error("getExternalId returned no id"));
    const local = yield* hook(() => job.findLocal(externalId));
    if (job.isDeleted?.(item)) {
      if (local === null || local === undefined || job.delete === undefined) {
        return { action: "skipped", externalId } as const;
      }
      yield* hook(() => job.delete!(local, item));
      return { action: "deleted", externalId } as const;
    }
    if (local === null || local === undefined) {
      yield* hook(() => job.create(item));
      return { action: "created", externalId } as const;
    }
    const outcome = yield* hook(() => job.update(item, local));
    return { action: outcome === false ? "unchanged" : "updated", externalId } as const;
  }).pipe(
    // A defect (a bug in user code that Effect caught as a die) is still one item's failure.
    Effect.catchAllCause((cause) => {
      const e = Cause.squash(cause);
      return Effect.succeed({
        action: "failed",
        externalId,
        error: { externalId, type: errorType(e), message: errorText(e) },
      } as const);
    }),
  );
};

/** Effect API of sync jobs (the Promise functions below call these). */
export const SyncJobs = {
  /**
   * Runs a job: streams its source, syncs item by item (`concurrency` at a time,
   * default 1), and collects per-item errors; one bad item never stops the run.
   * Fails with SyncSourceFailed only when the source itself cannot be read.
   */
  run: <Ext, Local>(
    job: SyncJob<Ext, Local>,
    options: { readonly concurrency?: number } = {},
  ): Effect.Effect<SyncResult, SyncSourceFailed> =>
    Effect.gen(function* () {
      const started = yield* Clock.currentTimeMillis;
      yield* hook(() => job.onStart?.()).pipe(Effect.mapError((e) => sourceFailed(job.name, e)));
      const counts = { created: 0, updated: 0, unchanged: 0, deleted: 0 };
      const errors: Array<SyncItemError> = [];
      yield* externalStream(job as SyncJob<Ext, unknown>).pipe(
        Stream.mapEffect((item) => syncItem(job, item), { concurrency: options.concurrency ?? 1 }),
        Stream.runForEach((r) =>
          Effect.sync(() => {
            if (r.action === "failed") errors.push(r.error!);
            else if (r.action !== "skipped") counts[r.action]++;
          }),
        ),
        Effect.mapError((e) => sourceFailed(job.name, e)),
      );
      const result: SyncResult = {
        name: job.name,
        ...counts,
        errors,
        durationMs: (yield* Clock.currentTimeMillis) - started,
      };
      yield* hook(() => job.onComplete?.(result)).pipe(Effect.mapError((e) => sourceFailed(job.name, e)));
      return result;
    }).pipe(Effect.withSpan("SyncJobs.run", { attributes: { job: job.name } })),

  /** Syncs one item (a webhook payload): `{ action, externalId }`; failure is `action: "failed"` with the error. */
  syncSingleItem: <Ext, Local>(job: SyncJob<Ext, Local>, payload: Ext): Effect.Effect<SingleItemResult> =>
    syncItem(job, payload).pipe(Effect.withSpan("SyncJobs.syncSingleItem")),

  /**
   * Runs a registered job by name. A trigger while the job runs joins that run instead of
   * starting another. When an engine runs in this process (SyncJobQueue), the run is a durable
   * job that any process may run, and this waits for its result.
   */
  trigger: (name: string): Effect.Effect<SyncResult, UnknownSyncJob | SyncSourceFailed> =>
    Effect.suspend((): Effect.Effect<SyncResult, UnknownSyncJob | SyncSourceFailed> => {
      const durable = durableSyncJobs();
      if (durable !== undefined) return durable.trigger(name);
      const job = definitionOf(name);
      if (job === undefined) return Effect.fail(new UnknownSyncJob({ name }));
      const running = inFlight.get(name);
      if (running !== undefined) return Effect.promise(() => running).pipe(Effect.flatten);
      const promise = Effect.runPromiseExit(SyncJobs.run(job)).finally(() => inFlight.delete(name));
      inFlight.set(name, promise);
      return Effect.promise(() => promise).pipe(Effect.flatten);
    }),

  /**
   * Runs a registered job on a schedule in this process until the returned fiber is
   * interrupted. Runs never overlap; a failed run is logged and the schedule goes on. On an
   * engine, `scheduleSyncJob` (or `SyncJobQueue.schedule`) makes a cluster-wide schedule instead.
   */
  schedule: (
    name: string,
    interval: SyncInterval,
  ): Effect.Effect<Fiber.RuntimeFiber<void>, UnknownSyncJob | InvalidSchedule> =>
    Effect.gen(function* () {
      if (definitionOf(name) === undefined) return yield* new UnknownSyncJob({ name });
      const once = SyncJobs.trigger(name).pipe(
        Effect.catchAll((e) => Effect.logWarning(`scheduled sync ${name} failed`, e)),
        Effect.asVoid,
      );
      if (typeof interval !== "string") {
        return yield* Effect.forkDaemon(
          Effect.repeat(Effect.sleep(interval.millis).pipe(Effect.zipRight(once)), Schedule.forever).pipe(
            Effect.asVoid,
          ),
        );
      }
      if (!cron.validate(interval)) return yield* new InvalidSchedule({ expression: interval });
      // node-cron computes the ticks; each tick runs the job on the Effect runtime, and
      // interrupting the fiber stops the cron task.
      return yield* Effect.forkDaemon(
        Effect.acquireUseRelease(
          Effect.map(Effect.runtime<never>(), (rt) =>
            cron.schedule(interval, () => {
              void Effect.runPromise(Effect.provide(once, rt.context));
            }),
          ),
          () => Effect.never,
          (task) => Effect.promise(async () => task.stop()),
        ),
      );
    }),
};

const sourceFailed = (name: string, e: unknown) =>
  e instanceof SyncSourceFailed ? e : new SyncSourceFailed({ name, type: errorType(e), message: errorText(e) });

// Runs and schedules of the standalone library mode; on an engine, triggers and schedules
// are rows in PostgreSQL instead (SyncJobQueue).
const inFlight = new Map<string, Promise<Exit.Exit<SyncResult, SyncSourceFailed>>>();
const schedules = new Map<string, Fiber.RuntimeFiber<void>>();

const toPromise = <A, E>(effect: Effect.Effect<A, E>, runtime?: Runtime.Runtime<never>): Promise<A> =>
  (runtime === undefined ? Effect.runPromiseExit(effect) : Runtime.runPromiseExit(runtime, effect)).then((exit) => {
    if (Exit.isSuccess(exit)) return exit.value;
    throw Option.getOrElse(Cause.failureOption(exit.cause), () => Cause.squash(exit.cause));
  });

/** Runs a job now. Resolves to `{ name, created, updated, unchanged, deleted, errors, durationMs }`. */
export const runSync = <Ext, Local>(
  job: SyncJob<Ext, Local>,
  options?: { readonly concurrency?: number },
): Promise<SyncResult> => toPromise(SyncJobs.run(job, options));

/** Syncs one item, e.g. from a webhook. Resolves to `{ action, externalId }`. */
export const syncSingleItem = <Ext, Local>(job: SyncJob<Ext, Local>, payload: Ext): Promise<SingleItemResult> =>
  toPromise(SyncJobs.syncSingleItem(job, payload));

/**
 * Registers a job for `triggerSync` and `scheduleSyncJob` (replacing one of the same name). On
 * an engine, every process that may run the job registers it (they load the same code).
 */
export const registerSyncJob = <Ext, Local>(job: SyncJob<Ext, Local>): void => registerDefinition(job);

/**
 * Runs a registered job by name; joins the run in flight if there is one. On an engine the run
 * is a durable job: whichever process claims it runs it, and it survives that process's crash.
 */
export const triggerSync = (name: string): Promise<SyncResult> =>
  toPromise(SyncJobs.trigger(name), durableSyncJobs()?.runtime);

/**
 * Runs a registered job every interval or on a cron expression, replacing an
 * earlier schedule of the same job. Resolves to a handle whose `stop()` ends it.
 *
 * On an engine the schedule is cluster-wide: stored under `sync-job:<name>`, each tick runs
 * once across all processes, it outlives this process, and `stop()` removes it for all. An
 * interval then ticks on the clock (`syncIntervals.hours(1)` at every full hour), so it must
 * divide a minute, an hour or a day; other intervals fail with InvalidSchedule.
 */
export const scheduleSyncJob = async (
  name: string,
  interval: SyncInterval,
): Promise<{ readonly stop: () => Promise<void> }> => {
  const durable = durableSyncJobs();
  if (durable !== undefined) {
    await toPromise(durable.schedule(name, interval), durable.runtime);
    return { stop: () => toPromise(durable.unschedule(name), durable.runtime) };
  }
  const previous = schedules.get(name);
  if (previous !== undefined) await Effect.runPromise(Fiber.interrupt(previous));
  const fiber = await toPromise(SyncJobs.schedule(name, interval));
  schedules.set(name, fiber);
  return {
    stop: async () => {
      if (schedules.get(name) === fiber) schedules.delete(name);
      await Effect.runPromise(Fiber.interrupt(fiber));
    },
  };
};
