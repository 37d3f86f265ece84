import { Cause, Clock, Context, Effect, Layer, Option } from "effect";
import { Connections } from "./Connections.ts";
import { Database } from "./Database.ts";
import { type AlreadyRunning, InvalidInput, PreconditionFailed, type ResourceNotFound } from "./Errors.ts";
import { type JobHandlerSpec, JobQueue, type RunningJob } from "./JobQueue.ts";
import { syncLockKey } from "./Locks.ts";
import { OutboundWebhooks } from "./OutboundWebhooks.ts";
import { RetryPolicy } from "./RetryPolicy.ts";
import { Scheduler, SYNC_JOB_KIND, type SyncJobPayload } from "./Scheduler.ts";
import { SyncEngine, type SyncMode, type SyncProgress, type SyncRunResult } from "./SyncEngine.ts";
import { recordRunMetrics } from "./SyncMetrics.ts";
import { SyncRuns, type SyncRunView, toRunView } from "./SyncRuns.ts";

/** Job kind of an inbound webhook event: fetch the record and upsert or delete it. */
export const WEBHOOK_EVENT_JOB_KIND = "webhook.event";
/** Job kind of one outbound webhook delivery attempt. */
export const WEBHOOK_DELIVERY_JOB_KIND = "webhook.deliver";

/** A sync job's payload, as schedules write it, plus who asked (schedules leave it out). */
type TriggeredSyncPayload = SyncJobPayload & { readonly trigger?: string };

export interface WebhookEventPayload {
  readonly connectionId: string;
  readonly entity: string;
  readonly externalId: string;
  readonly kind: "created" | "updated" | "deleted" | "merged" | "restored";
  readonly occurredAt: string;
  /** Rows of `webhook_events` this job settles (duplicates of one record coalesce). */
  readonly eventRowIds: ReadonlyArray<string>;
}

export interface EntityStatus {
  readonly entity: string;
  readonly lastRuns: {
    readonly full: SyncRunView | null;
    readonly delta: SyncRunView | null;
    readonly reconcile: SyncRunView | null;
  };
  readonly deltaCursor: string | null;
  /** Seconds since the last successful full or delta run finished (null: never synced). */
  readonly freshnessSeconds: number | null;
  readonly nextRuns: { readonly delta: string | null; readonly reconcile: string | null };
  readonly pendingChanges: number;
  readonly failedRecords: number;
}

export interface ConnectionSyncStatus {
  readonly connectionId: string;
  readonly paused: boolean;
  /** The last finished run of any entity. */
  readonly lastSync: {
    readonly at: string;
    readonly entity: string;
    readonly mode: string;
    readonly status: string;
  } | null;
  /** Local changes not yet written to the remote. */
  readonly pendingChanges: number;
  /** Sync runs that ended failed in the last 24 hours. */
  readonly failedSyncs: number;
  readonly entities: ReadonlyArray<EntityStatus>;
}

export interface LocalChange {
  readonly externalId: string;
  readonly fields: Record<string, unknown>;
}

/** Progress is written at most this often per run (each write is one UPDATE). */
const PROGRESS_INTERVAL_MS = 250;

const tagOf = (cause: Cause.Cause<unknown>) => {
  const failure = Cause.failureOption(cause);
  const error = Option.isSome(failure) ? failure.value : Cause.squash(cause);
  const tag = (error as { _tag?: unknown } | null)?._tag;
  const message = (error as { message?: unknown } | null)?.message;
  return {
    tag: typeof tag === "string" ? tag : "Defect",
    message: typeof message === "string" ? message : String(error),
  };
};

/**
 * Connection syncs as durable jobs: triggering (one live sync per connection x
 * entity), the job handlers the worker runs (sync runs with history and
 * progress, webhook events, outbound deliveries), local pushes, pause/resume
 * and status. The engine does the syncing; this module decides when and records
 * what happened.
 */
export class Syncs extends Context.Tag("@tandem/core/Syncs")<
  Syncs,
  {
    readonly trigger: (
      tenantId: string,
      input: {
        readonly connectionId: string;
        readonly entity: string;
        readonly mode: SyncMode;
        readonly trigger?: string;
      },
    ) => Effect.Effect<
      { readonly jobId: string; readonly status: "queued" },
      ResourceNotFound | InvalidInput | AlreadyRunning | PreconditionFailed
    >;
    readonly push: (
      tenantId: string,
      input: { readonly connectionId: string; readonly entity: string; readonly changes: ReadonlyArray<LocalChange> },
    ) => Effect.Effect<
      ReadonlyArray<{ readonly externalId: string; readonly syncStatus: string; readonly pushedNow: boolean }>,
      ResourceNotFound | InvalidInput
    >;
    readonly status: (tenantId: string, connectionId: string) => Effect.Effect<ConnectionSyncStatus, ResourceNotFound>;
    readonly setPaused: (
      tenantId: string,
      connectionId: string,
      paused: boolean,
    ) => Effect.Effect<{ readonly paused: boolean }, ResourceNotFound>;
    /** Creates the default delta and reconciliation schedules of every entity of a connection. */
    readonly setupSchedules: (tenantId: string, connectionId: string) => Effect.Effect<void, ResourceNotFound>;
    /** The handlers a worker needs for everything this module enqueues. */
    readonly handlers: Readonly<Record<string, JobHandlerSpec>>;
  }
>() {
  static readonly layer = Layer.effect(
    Syncs,
    Effect.gen(function* () {
      const db = yield* Database;
      const connections = yield* Connections;
      const queue = yield* JobQueue;
      const scheduler = yield* Scheduler;
      const engine = yield* SyncEngine;
      const runs = yield* SyncRuns;
      const policy = yield* RetryPolicy;
      const outbound = yield* OutboundWebhooks;

      const entityOf = (tenantId: string, connectionId: string, entity: string) =>
        Effect.gen(function* () {
          const resolved = yield* connections.resolve(tenantId, connectionId);
          if (!(entity in resolved.connector.entities)) {
            return yield* new InvalidInput({
              issues: [
                {
                  path: "entity",
                  message: `connector ${resolved.connector.name} has no entity "${entity}"; it has ${Object.keys(resolved.connector.entities).join(", ")}`,
                },
              ],
            });
          }
          return resolved;
        });

      /** Throttled progress writes: a run reports per batch, the database sees at most one write per interval. */
      const progressWriter = (runId: string) => {
        let last = 0;
        return (p: SyncProgress) =>
          Effect.flatMap(Clock.currentTimeMillis, (at) => {
            if (p.phase !== "done" && at - last < PROGRESS_INTERVAL_MS) return Effect.void;
            last = at;
            return runs.progress(runId, p);
          });
      };

      const runSync = (job: RunningJob) =>
        Effect.gen(function* () {
          const payload = job.payload as TriggeredSyncPayload;
          const tenantId = job.tenantId;
          if (tenantId === null) return yield* Effect.die(new Error(`sync job ${job.id} has no tenant`));
          const target = { tenantId, connectionId: payload.connectionId, entity: payload.entity };
          const runId = yield* runs.start({
            ...target,
            mode: payload.mode,
            trigger: payload.trigger ?? "schedule",
            jobId: job.id,
            attempt: job.attempt,
          });
          const exit = yield* engine
            .run({ ...target, mode: payload.mode, options: { onProgress: progressWriter(runId) } })
            .pipe(Effect.exit);
          if (exit._tag === "Success") {
            const result: SyncRunResult = exit.value;
            yield* runs.succeed(runId, result);
            yield* runs.get(tenantId, runId).pipe(Effect.flatMap(recordRunMetrics));
            yield* outbound.emit(tenantId, "sync.completed", {
              runId,
              jobId: job.id,
              ...target,
              mode: payload.mode,
              created: result.created,
              updated: result.updated,
              unchanged: result.unchanged,
              deleted: result.deleted,
              errors: result.errors.length,
              durationMs: result.durationMs,
              ...(result.quarantine ? { quarantine: result.quarantine } : {}),
            });
            return { runId, ...result, errors: result.errors.slice(0, 100) };
          }
          const failure = tagOf(exit.cause);
          yield* runs.fail(runId, failure);
          yield* runs.get(tenantId, runId).pipe(Effect.flatMap(recordRunMetrics));
          // The queue decides whether this attempt is the last; tell subscribers only then.
          if (job.attempt >= job.maxAttempts) {
            yield* outbound.emit(tenantId, "sync.failed", {
              runId,
              jobId: job.id,
              ...target,
              mode: payload.mode,
              error: failure,
            });
          }
          return yield* Effect.failCause(exit.cause);
        });

      const runWebhookEvent = (job: RunningJob) =>
        Effect.gen(function* () {
          const payload = job.payload as WebhookEventPayload;
          const tenantId = job.tenantId!;
          const result = yield* engine.syncRecord(
            { tenantId, connectionId: payload.connectionId, entity: payload.entity },
            { externalId: payload.externalId, kind: payload.kind, occurredAt: new Date(payload.occurredAt) },
          );
          const at = new Date(yield* Clock.currentTimeMillis);
          if (payload.eventRowIds.length > 0) {
            yield* db
              .query((k) =>
                k
                  .updateTable("webhook_events")
                  .set({ processed_at: at })
                  .where("id", "in", payload.eventRowIds)
                  .execute(),
              )
              .pipe(Effect.orDie);
          }
          return result;
        });

      const runDelivery = (job: RunningJob) =>
        Effect.gen(function* () {
          const { deliveryId } = job.payload as { readonly deliveryId: string };
          const exit = yield* outbound.attempt(deliveryId).pipe(Effect.exit);
          if (exit._tag === "Success") return { deliveryId, delivered: true };
          const failure = tagOf(exit.cause);
          if (failure.tag === "DeliveryRejected" || job.attempt >= job.maxAttempts) {
            yield* outbound.markDead(deliveryId, `${failure.message} (after ${job.attempt} attempts)`);
          }
          return yield* Effect.failCause(exit.cause);
        });

      return {
        trigger: Effect.fn("Syncs.trigger")(function* (tenantId, input) {
          const resolved = yield* entityOf(tenantId, input.connectionId, input.entity);
          if (resolved.row.paused) {
            return yield* new PreconditionFailed({
              message: `connection ${input.connectionId} is paused; resume it first`,
            });
          }
          const payload: TriggeredSyncPayload = {
            connectionId: input.connectionId,
            entity: input.entity,
            mode: input.mode,
            trigger: input.trigger ?? "api",
          };
          const { id } = yield* queue.enqueue({
            kind: SYNC_JOB_KIND,
            payload,
            priority: "onDemand",
            tenantId,
            connectionId: input.connectionId,
            maxAttempts: policy.maxAttemptsFor(resolved.connector.name),
            dedupeKey: syncLockKey(input.connectionId, input.entity),
          });
          return { jobId: id, status: "queued" as const };
        }),

        push: Effect.fn("Syncs.push")(function* (tenantId, input) {
          yield* entityOf(tenantId, input.connectionId, input.entity);
          const target = { tenantId, connectionId: input.connectionId, entity: input.entity };
          return yield* Effect.forEach(input.changes, (change) =>
            engine.applyLocalChange(target, change.externalId, change.fields).pipe(
              Effect.map((r) => ({
                externalId: change.externalId,
                syncStatus: r.record.syncStatus,
                pushedNow: r.pushedNow,
              })),
              Effect.catchAll(
                (e): Effect.Effect<never, ResourceNotFound | InvalidInput> =>
                  e._tag === "ResourceNotFound"
                    ? Effect.fail(e)
                    : Effect.fail(
                        new InvalidInput({
                          issues: [{ path: `changes.${change.externalId}`, message: e.message ?? String(e) }],
                        }),
                      ),
              ),
            ),
          );
        }),

        status: Effect.fn("Syncs.status")(function* (tenantId: string, connectionId: string) {
          const resolved = yield* connections.resolve(tenantId, connectionId);
          const now = yield* Clock.currentTimeMillis;
          const entities = Object.keys(resolved.connector.entities);
          const latest = yield* db
            .query((k) =>
              k
                .selectFrom("sync_runs")
                .selectAll()
                .distinctOn(["entity", "mode"])
                .where("connection_id", "=", connectionId)
                .where("status", "!=", "running")
                .orderBy("entity")
                .orderBy("mode")
                .orderBy("started_at", "desc")
                .execute(),
            )
            .pipe(Effect.orDie);
          const lastSuccess = yield* db
            .query((k) =>
              k
                .selectFrom("sync_runs")
                .select(["entity", (eb) => eb.fn.max("finished_at").as("at")])
                .where("connection_id", "=", connectionId)
                .where("status", "=", "succeeded")
                .where("mode", "in", ["full", "delta"])
                .groupBy("entity")
                .execute(),
            )
            .pipe(Effect.orDie);
          const records = yield* db
            .query((k) =>
              k
                .selectFrom("records")
                .select([
                  "entity",
                  (eb) => eb.fn.countAll<string>().filterWhere("sync_status", "=", "pending").as("pending"),
                  (eb) => eb.fn.countAll<string>().filterWhere("sync_status", "=", "failed").as("failed"),
                ])
                .where("connection_id", "=", connectionId)
                .where("deleted_at", "is", null)
                .groupBy("entity")
                .execute(),
            )
            .pipe(Effect.orDie);
          const cursors = yield* db
            .query((k) =>
              k
                .selectFrom("sync_cursors")
                .select(["entity", "delta_cursor"])
                .where("connection_id", "=", connectionId)
                .execute(),
            )
            .pipe(Effect.orDie);
          const failedSyncs = yield* db
            .query((k) =>
              k
                .selectFrom("sync_runs")
                .select((eb) => eb.fn.countAll<string>().as("n"))
                .where("connection_id", "=", connectionId)
                .where("status", "=", "failed")
                .where("finished_at", ">", new Date(now - 86_400_000))
                .executeTakeFirstOrThrow(),
            )
            .pipe(Effect.orDie);
          const schedules = yield* scheduler.list({ connectionId });

          const runOf = (entity: string, mode: string) => {
            const row = latest.find((r) => r.entity === entity && r.mode === mode);
            return row === undefined ? null : toRunView(row);
          };
          const nextOf = (entity: string, mode: string) =>
            schedules.find((s) => s.name === `sync:${connectionId}:${entity}:${mode}`)?.nextTickAt ?? null;
          const entityStatuses = entities.map((entity): EntityStatus => {
            const success = lastSuccess.find((r) => r.entity === entity)?.at;
            const counts = records.find((r) => r.entity === entity);
            const cursor = cursors.find((c) => c.entity === entity)?.delta_cursor;
            return {
              entity,
              lastRuns: {
                full: runOf(entity, "full"),
                delta: runOf(entity, "delta"),
                reconcile: runOf(entity, "reconcile"),
              },
              deltaCursor: cursor ? cursor.toISOString() : null,
              freshnessSeconds: success ? Math.max(0, Math.round((now - new Date(success).getTime()) / 1000)) : null,
              nextRuns: { delta: nextOf(entity, "delta"), reconcile: nextOf(entity, "reconcile") },
              pendingChanges: Number(counts?.pending ?? 0),
              failedRecords: Number(counts?.failed ?? 0),
            };
          });
          const last = [...latest].sort((a, b) => (b.finished_at?.getTime() ?? 0) - (a.finished_at?.getTime() ?? 0))[0];
          return {
            connectionId,
            paused: resolved.row.paused,
            lastSync: last?.finished_at
              ? { at: last.finished_at.toISOString(), entity: last.entity, mode: last.mode, status: last.status }
              : null,
            pendingChanges: entityStatuses.reduce((n, e) => n + e.pendingChanges, 0),
            failedSyncs: Number(failedSyncs.n),
            entities: entityStatuses,
          } satisfies ConnectionSyncStatus;
        }),

        setPaused: Effect.fn("Syncs.setPaused")(function* (tenantId: string, connectionId: string, paused: boolean) {
          // Schedules skip paused connections; triggers refuse them. One flag, on the connection.
          const updated = yield* connections
            .update(tenantId, connectionId, { paused })
            .pipe(Effect.catchTags({ InvalidInput: Effect.die, AlreadyExists: Effect.die }));
          return { paused: updated.paused };
        }),

        setupSchedules: Effect.fn("Syncs.setupSchedules")(function* (tenantId: string, connectionId: string) {
          const resolved = yield* connections.resolve(tenantId, connectionId);
          for (const entity of Object.keys(resolved.connector.entities)) {
            yield* scheduler
              .ensureSyncSchedules({
                connectionId,
                entity,
                tenantId,
                maxAttempts: policy.maxAttemptsFor(resolved.connector.name),
              })
              .pipe(Effect.orDie);
          }
        }),

        handlers: {
          [SYNC_JOB_KIND]: { run: runSync },
          [WEBHOOK_EVENT_JOB_KIND]: { run: runWebhookEvent },
          [WEBHOOK_DELIVERY_JOB_KIND]: { run: runDelivery },
        },
      };
    }),
  );
}
