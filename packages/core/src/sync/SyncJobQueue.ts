import { Context, Effect, Layer } from "effect";
import { InvalidInput } from "../errors/Errors.ts";
import { type JobHandlerSpec, JobQueue, type RunningJob } from "../queue/JobQueue.ts";
import { Scheduler, type ScheduleView } from "../queue/Scheduler.ts";
import { intervalCron } from "./intervalCron.ts";
import {
  InvalidSchedule,
  type SyncInterval,
  SyncJobs,
  type SyncResult,
  type SyncSourceFailed,
  UnknownSyncJob,
} from "./SyncJob.ts";
import { awaitSyncJobResult } from "./SyncJobOutcome.ts";
import { definitionOf, installDurableSyncJobs } from "./SyncJobRegistry.ts";

/** The job kind of a registered SyncJob's run; the payload names the job (`{ name }`). */
export const REGISTERED_SYNC_JOB_KIND = "sync-job";

/** Payload of a registered SyncJob's run. */
export interface RegisteredSyncJobPayload {
  readonly name: string;
}

/**
 * The schedule name and the dedupe key of a registered job's runs: one live run per job across
 * the cluster. A trigger joins the live run, and a tick waits for it, as in-process runs never
 * overlap either.
 */
export const registeredSyncJobKey = (name: string): string => `sync-job:${name}`;

/** How a run was enqueued: a new job, or the live one it joined. */
export interface EnqueuedSyncJob {
  readonly jobId: string;
  readonly status: "enqueued" | "already_running";
}

/** Registered SyncJobs on the engine; see SyncJobQueue. */
export interface SyncJobQueueService {
  /** Enqueues a run of a registered job, or answers the live one. */
  readonly enqueue: (name: string) => Effect.Effect<EnqueuedSyncJob, UnknownSyncJob>;
  /** Enqueues (or joins) a run and waits for its result, wherever it runs: `triggerSync` on an engine. */
  readonly trigger: (name: string) => Effect.Effect<SyncResult, UnknownSyncJob | SyncSourceFailed>;
  /**
   * Creates or replaces the job's cluster-wide schedule (`sync-job:<name>`): a cron expression,
   * or an interval that divides a minute, an hour or a day (ticking on the clock).
   */
  readonly schedule: (
    name: string,
    interval: SyncInterval,
  ) => Effect.Effect<ScheduleView, UnknownSyncJob | InvalidSchedule>;
  /** Removes the job's schedule; nothing when it has none. */
  readonly unschedule: (name: string) => Effect.Effect<void>;
  /** The handler a worker needs to run registered jobs. */
  readonly handlers: Readonly<Record<string, JobHandlerSpec>>;
}

/** An interval in the largest whole unit, for an error message ("45 minutes"). */
const describeInterval = (millis: number): string => {
  for (const [unit, size] of [
    ["days", 86_400_000],
    ["hours", 3_600_000],
    ["minutes", 60_000],
    ["seconds", 1_000],
  ] as const) {
    if (millis % size === 0) return `${millis / size} ${unit}`;
  }
  return `${millis} ms`;
};

const cronOf = (interval: SyncInterval): Effect.Effect<string, InvalidSchedule> => {
  if (typeof interval === "string") return Effect.succeed(interval);
  const cron = intervalCron(interval.millis);
  if (cron !== undefined) return Effect.succeed(cron);
  const every = `every ${describeInterval(interval.millis)}`;
  return Effect.fail(
    new InvalidSchedule({
      expression: every,
      reason: `a cluster-wide schedule ticks on the clock, so its interval must divide a minute, an hour or a day; ${every} does not (use a cron expression)`,
    }),
  );
};

const registered = (name: string): Effect.Effect<void, UnknownSyncJob> =>
  definitionOf(name) === undefined ? Effect.fail(new UnknownSyncJob({ name })) : Effect.void;

/**
 * Runs a registered job in the process that claimed it. A name this process has not registered
 * fails UnknownSyncJob and is retried (another process may have it, or this one registers it
 * a moment after its worker started), then dead-lettered.
 */
const runRegistered = (job: RunningJob) => {
  const name = (job.payload as Partial<RegisteredSyncJobPayload> | null)?.name;
  if (typeof name !== "string") {
    return Effect.fail(
      new InvalidInput({ issues: [{ path: "payload.name", message: "a sync job run names its job" }] }),
    );
  }
  const definition = definitionOf(name);
  return definition === undefined ? Effect.fail(new UnknownSyncJob({ name })) : SyncJobs.run(definition);
};

const make = Effect.gen(function* () {
  const queue = yield* JobQueue;
  const scheduler = yield* Scheduler;

  const enqueue = Effect.fn("SyncJobQueue.enqueue")(function* (name: string) {
    yield* registered(name);
    const payload: RegisteredSyncJobPayload = { name };
    return yield* queue
      .enqueue({ kind: REGISTERED_SYNC_JOB_KIND, payload, dedupeKey: registeredSyncJobKey(name) })
      .pipe(
        Effect.map(({ id }): EnqueuedSyncJob => ({ jobId: id, status: "enqueued" })),
        Effect.catchTags({
          AlreadyRunning: (e) => Effect.succeed<EnqueuedSyncJob>({ jobId: e.jobId, status: "already_running" }),
          // The kind and the defaults are ours and valid.
          InvalidInput: (e) => Effect.die(e),
        }),
      );
  });

  const trigger = Effect.fn("SyncJobQueue.trigger")(function* (name: string) {
    const { jobId } = yield* enqueue(name);
    return yield* awaitSyncJobResult(queue, name, jobId);
  });

  const schedule = Effect.fn("SyncJobQueue.schedule")(function* (name: string, interval: SyncInterval) {
    yield* registered(name);
    const cron = yield* cronOf(interval);
    const payload: RegisteredSyncJobPayload = { name };
    return yield* scheduler
      .upsert({
        name: registeredSyncJobKey(name),
        cron,
        kind: REGISTERED_SYNC_JOB_KIND,
        payload,
        dedupeKey: registeredSyncJobKey(name),
      })
      .pipe(Effect.catchTag("InvalidInput", () => Effect.fail(new InvalidSchedule({ expression: cron }))));
  });

  const unschedule = (name: string) =>
    scheduler.remove(registeredSyncJobKey(name)).pipe(
      Effect.catchTag("ResourceNotFound", () => Effect.void),
      Effect.withSpan("SyncJobQueue.unschedule"),
    );

  // From now until the engine stops, this process's triggerSync and scheduleSyncJob go here.
  yield* installDurableSyncJobs({
    runtime: yield* Effect.runtime<never>(),
    trigger,
    schedule: (name, interval) => Effect.asVoid(schedule(name, interval)),
    unschedule,
  });

  return {
    enqueue,
    trigger,
    schedule,
    unschedule,
    handlers: { [REGISTERED_SYNC_JOB_KIND]: { run: runRegistered } },
  } satisfies SyncJobQueueService;
});

/**
 * Registered SyncJobs (seeds/003) on the engine. Where this service runs, `triggerSync` enqueues
 * a durable job (`sync-job`, the job's name in its payload) that any process's worker may run,
 * and that another runs again when the one holding it dies (its lease expires); and
 * `scheduleSyncJob` is a Scheduler schedule whose every tick runs once across the processes.
 * Without it (a script with no database), both stay in-process (SyncJob.ts).
 */
export class SyncJobQueue extends Context.Tag("@tandem/core/SyncJobQueue")<SyncJobQueue, SyncJobQueueService>() {
  /** Needs JobQueue and Scheduler. */
  static readonly layerNoDeps = Layer.scoped(SyncJobQueue, make);

  /** Needs Database. */
  static readonly layer = SyncJobQueue.layerNoDeps.pipe(Layer.provide(Scheduler.layer), Layer.provide(JobQueue.layer));
}
