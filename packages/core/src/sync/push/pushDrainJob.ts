import { type Context, Effect } from "effect";
import type { JobQueue, RunningJob } from "../../queue/JobQueue.ts";
import { JobPriority } from "../../queue/jobs/priority.ts";
import type { RetryPolicy } from "../../queue/RetryPolicy.ts";
import type { Connections } from "../../tenancy/Connections.ts";
import type { EntitySync, SyncTarget } from "../EntitySync.ts";

/** The job kind of push drains: one connection x entity's due outbox entries. */
export const PUSH_DRAIN_JOB_KIND = "push-drain";

/** A push drain's payload. */
export interface PushDrainPayload {
  readonly connectionId: string;
  readonly entity: string;
  /** Every pending entry, due or not (a push asked for through the API); default: the due ones. */
  readonly all?: boolean;
}

export interface DrainSchedulingDeps {
  readonly queue: Context.Tag.Service<JobQueue>;
  readonly policy: Context.Tag.Service<RetryPolicy>;
}

/**
 * Makes sure a drain of the entity runs by `dueAt`, in the caller's transaction (the one that
 * wrote the outbox entries it is for): a queued drain due by then (and of the priority needed)
 * is share-locked until the transaction commits, so it cannot start before the entries are
 * visible to it, and the workers are woken once it commits; otherwise a new drain is queued for
 * `dueAt`. A drain that is already running
 * does not count: it may have claimed before these entries existed, and it only schedules a
 * follow-up for what is left when it finishes (see `runPushDrainJob`). Critical changes get a
 * drain of webhook priority (claimed before everything else), the rest on-demand.
 */
export const ensureDrain = (
  deps: DrainSchedulingDeps,
  target: SyncTarget,
  connector: string,
  dueAt: Date,
  critical: boolean,
) =>
  Effect.gen(function* () {
    const priority = critical ? JobPriority.webhook : JobPriority.onDemand;
    const held = yield* deps.queue.holdQueued({
      kind: PUSH_DRAIN_JOB_KIND,
      connectionId: target.connectionId,
      payload: { entity: target.entity },
      runAtOrBefore: dueAt,
      priorityAtMost: priority,
    });
    if (held !== undefined) {
      // A worker that tried to claim the held drain meanwhile skipped it (its row was locked) and
      // went back to sleep: without a wake once the hold ends, a drain already due would wait for
      // the workers' next poll (2 s), the tail of a local edit's latency.
      yield* deps.queue.nudge;
      return;
    }
    const payload: PushDrainPayload = { connectionId: target.connectionId, entity: target.entity };
    yield* deps.queue
      .enqueue({
        kind: PUSH_DRAIN_JOB_KIND,
        payload,
        priority,
        tenantId: target.tenantId,
        connectionId: target.connectionId,
        runAt: dueAt,
        maxAttempts: deps.policy.maxAttemptsFor(connector),
      })
      // No dedupe key, a valid kind and priority: nothing to refuse.
      .pipe(Effect.orDie);
  });

export interface PushDrainJobDeps extends DrainSchedulingDeps {
  readonly engine: Context.Tag.Service<EntitySync>;
  readonly connections: Context.Tag.Service<Connections>;
  readonly db: { readonly transaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R> };
}

/**
 * Runs one push drain: the entity's due entries written and settled (EntitySync.drain), then a
 * drain queued for when the next pending entry comes due (a retry's backoff, a change that came
 * in meanwhile). A paused connection pushes nothing: its entries wait, and resuming it queues
 * their drains. A connection deleted meanwhile took its entries with it: nothing to do.
 */
export const runPushDrainJob = (deps: PushDrainJobDeps, job: RunningJob) =>
  Effect.gen(function* () {
    const payload = job.payload as PushDrainPayload;
    const tenantId = job.tenantId;
    if (tenantId === null) return yield* Effect.die(new Error(`push drain ${job.id} has no tenant`));
    const target: SyncTarget = { tenantId, connectionId: payload.connectionId, entity: payload.entity };
    const connection = yield* deps.connections.resolve(tenantId, payload.connectionId).pipe(Effect.option);
    if (connection._tag === "None") return { skipped: "the connection no longer exists" };
    if (connection.value.row.paused) return { skipped: "the connection is paused" };
    const result = yield* deps.engine.drain(target, { claimer: job.id, which: payload.all === true ? "all" : "due" });
    if (result.nextDueAt !== null) {
      yield* deps.db.transaction(ensureDrain(deps, target, connection.value.connector.name, result.nextDueAt, false));
    }
    return { ...result, errors: result.errors.slice(0, 100) };
  });
