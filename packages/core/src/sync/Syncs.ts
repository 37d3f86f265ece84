import { Cause, Clock, Context, Effect, Layer, Option } from "effect";
import { ConnectorCredentials } from "../connector/ConnectorCredentials.ts";
import { Database } from "../db/Database.ts";
import {
  type AlreadyExists,
  type AlreadyRunning,
  InvalidInput,
  PreconditionFailed,
  type ResourceNotFound,
} from "../errors/Errors.ts";
import { recordRunMetrics, recordWebhookLag } from "../ops/MetricsReport.ts";
import { RunHistory, type SyncRunView, toRunView } from "../ops/RunHistory.ts";
import { type JobHandlerSpec, JobQueue, type JobView, type RunningJob } from "../queue/JobQueue.ts";
import { Locks, recordLockKey, syncLockKey } from "../queue/Locks.ts";
import { isLastAttempt, RetryPolicy } from "../queue/RetryPolicy.ts";
import { Scheduler, SYNC_JOB_KIND, type SyncJobPayload } from "../queue/Scheduler.ts";
import { RecordStore } from "../store/RecordStore.ts";
import { Connections, type ConnectionView, type CreateConnection } from "../tenancy/Connections.ts";
import { OutboundWebhooks, WEBHOOK_DELIVERY_JOB_KIND } from "../webhooks/OutboundWebhooks.ts";
import {
  EntitySync,
  type SyncMode,
  type SyncProgress,
  type SyncRecordResult,
  type SyncRunResult,
  type SyncTarget,
} from "./EntitySync.ts";

/** Job kind of an inbound webhook delivery: fetch each record it names and upsert or delete it. */
export const WEBHOOK_EVENT_JOB_KIND = "webhook.event";

/** A sync job's payload, as schedules write it, plus who asked (schedules leave it out). */
type TriggeredSyncPayload = SyncJobPayload & { readonly trigger?: string };

/** One record's new events within a delivery: the newest one's kind and time, and every row. */
export interface WebhookRecordEvents {
  readonly entity: string;
  readonly externalId: string;
  readonly kind: "created" | "updated" | "deleted" | "merged" | "restored";
  readonly occurredAt: string;
  /** Rows of `webhook_events` this record's sync settles (a delivery's events about it coalesce). */
  readonly eventRowIds: ReadonlyArray<string>;
}

/**
 * The job of one inbound delivery: the records its new events name, in the delivery's order
 * (InboundWebhooks builds it). One job per delivery rather than per record: the intake's
 * statement wrote a job row per record, most of its work under load.
 */
export interface WebhookEventPayload {
  readonly connectionId: string;
  readonly records: ReadonlyArray<WebhookRecordEvents>;
}

/** Jobs queued before deliveries had one job each named a single record at the payload's top level. */
const webhookRecordsOf = (payload: unknown): WebhookEventPayload => {
  const p = payload as Partial<WebhookEventPayload> & Partial<WebhookRecordEvents> & { readonly connectionId: string };
  return Array.isArray(p.records)
    ? (p as WebhookEventPayload)
    : { connectionId: p.connectionId, records: [p as WebhookRecordEvents] };
};

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

/** A job's live progress, as `jobs.watch` streams it. */
export interface JobProgress {
  readonly jobId: string;
  readonly kind: string;
  readonly status: JobView["status"];
  readonly attempt: number;
  readonly maxAttempts: number;
  /** `queued`, `running`, `retrying` (waiting for its next attempt), or the final status. */
  readonly phase: string;
  readonly pages: number;
  /** Records handled so far: created + updated + unchanged + deleted. */
  readonly processed: number;
  readonly created: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly deleted: number;
  readonly errors: number;
  readonly recordsPerSecond: number;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  readonly error: string | null;
}

/** Statuses after which a job changes no more. */
export const finalJobStatuses: ReadonlySet<string> = new Set(["completed", "dead", "cancelled"]);

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
      ResourceNotFound | InvalidInput | PreconditionFailed
    >;
    readonly status: (tenantId: string, connectionId: string) => Effect.Effect<ConnectionSyncStatus, ResourceNotFound>;
    readonly setPaused: (
      tenantId: string,
      connectionId: string,
      paused: boolean,
    ) => Effect.Effect<{ readonly paused: boolean }, ResourceNotFound>;
    /** A job's progress now (its current attempt's run, if it is a sync). */
    readonly progress: (tenantId: string, jobId: string) => Effect.Effect<JobProgress, ResourceNotFound>;
    /** Creates a connection with its default schedules (delta and reconciliation per entity). */
    readonly createConnection: (
      tenantId: string,
      input: CreateConnection,
    ) => Effect.Effect<ConnectionView, InvalidInput | AlreadyExists>;
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
      const engine = yield* EntitySync;
      const runs = yield* RunHistory;
      const policy = yield* RetryPolicy;
      const outbound = yield* OutboundWebhooks;
      const locks = yield* Locks;
      const store = yield* RecordStore;
      const credentials = yield* ConnectorCredentials;
      /** Before a job that failed with AuthExpired runs once more (see ConnectorCredentials.forget). */
      const refreshCredentials = (job: RunningJob) =>
        job.connectionId === null ? Effect.void : credentials.forget(job.connectionId);

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

      /** Outbound `record.*` events for the entity's changes after `after` in the change feed. */
      const emitRecordEvents = (target: SyncTarget, after: string, runId: string) =>
        Effect.gen(function* () {
          let cursor = after;
          for (;;) {
            const page = yield* store.changes(target, { after: cursor, limit: 1_000, includeDeleted: true });
            yield* outbound.emitMany(
              target.tenantId,
              page.records.map((r) => ({
                type: r.deletedAt !== null ? "record.deleted" : r.version <= 1 ? "record.created" : "record.updated",
                data: {
                  connectionId: target.connectionId,
                  entity: target.entity,
                  externalId: r.externalId,
                  runId,
                  ...(r.deletedAt === null ? { record: r.data } : { deletedAt: r.deletedAt.toISOString() }),
                },
              })),
            );
            cursor = page.cursor;
            if (!page.hasMore) return;
          }
        });

      const runSync = (job: RunningJob) =>
        Effect.gen(function* () {
          const payload = job.payload as TriggeredSyncPayload;
          const tenantId = job.tenantId;
          if (tenantId === null) return yield* Effect.die(new Error(`sync job ${job.id} has no tenant`));
          const target = { tenantId, connectionId: payload.connectionId, entity: payload.entity };
          // Record events are read from the change feed after the run: everything this entity
          // changed past the feed's position now. Skipped when nobody subscribes to them.
          const recordTypes = ["record.created", "record.updated", "record.deleted"] as const;
          const feedStart = (yield* outbound.wants(tenantId, recordTypes))
            ? yield* db
                .query((k) =>
                  k
                    .selectFrom("records")
                    .select((eb) => eb.fn.coalesce(eb.fn.max("change_seq"), eb.val(0)).as("seq"))
                    .where("connection_id", "=", target.connectionId)
                    .where("entity", "=", target.entity)
                    .executeTakeFirstOrThrow(),
                )
                .pipe(
                  Effect.orDie,
                  Effect.map((r) => String(r.seq)),
                )
            : undefined;
          const runId = yield* runs.start({
            ...target,
            mode: payload.mode,
            trigger: payload.trigger ?? "schedule",
            jobId: job.id,
            attempt: job.attempt,
          });
          // The queue's dedupe key keeps one live job per connection x entity; the lock row
          // also fences a run whose lease was lost (another process took the job over).
          const exit = yield* locks
            .withLock(syncLockKey(target.connectionId, target.entity), { jobId: job.id, waitMs: 5_000 }, () =>
              engine.run({ ...target, mode: payload.mode, options: { onProgress: progressWriter(runId) } }),
            )
            .pipe(Effect.exit);
          if (exit._tag === "Success") {
            const result: SyncRunResult = exit.value;
            yield* runs.succeed(runId, result);
            if (feedStart !== undefined) yield* emitRecordEvents(target, feedStart, runId);
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
          if (isLastAttempt(policy, job, exit.cause)) {
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

      /** The given event rows that no attempt has marked processed yet. */
      const unprocessedRows = (rowIds: ReadonlyArray<string>) =>
        rowIds.length === 0
          ? Effect.succeed(new Set<string>())
          : db
              .query((k) =>
                k
                  .selectFrom("webhook_events")
                  .select("id")
                  .where("id", "in", rowIds)
                  .where("processed_at", "is", null)
                  .execute(),
              )
              .pipe(
                Effect.map((rows) => new Set(rows.map((r) => r.id))),
                Effect.orDie,
              );

      const markProcessed = (rowIds: ReadonlyArray<string>) =>
        rowIds.length === 0
          ? Effect.void
          : Effect.gen(function* () {
              const at = new Date(yield* Clock.currentTimeMillis);
              yield* db
                .query((k) =>
                  k.updateTable("webhook_events").set({ processed_at: at }).where("id", "in", rowIds).execute(),
                )
                .pipe(Effect.orDie);
            });

      /**
       * Syncs each record a delivery named, in order. A retry resumes: a record whose event rows
       * an earlier attempt marked processed is done. A record that fails ends the attempt; the
       * rows of the records synced before it are marked all the same, in one statement.
       */
      const runWebhookEvent = (job: RunningJob) =>
        Effect.gen(function* () {
          const { connectionId, records } = webhookRecordsOf(job.payload);
          const tenantId = job.tenantId!;
          const unprocessed = yield* unprocessedRows(records.flatMap((r) => r.eventRowIds));
          const pending = records.filter(
            (r) => r.eventRowIds.length === 0 || r.eventRowIds.some((id) => unprocessed.has(id)),
          );
          const synced: Array<SyncRecordResult & { readonly entity: string }> = [];
          const settled: Array<string> = [];
          const syncOne = (record: WebhookRecordEvents) =>
            // A pull of one record never interleaves with a push of it (Syncs.push takes the same lock);
            // a lock held elsewhere fails the attempt, and the queue retries it.
            locks
              .withLock(
                recordLockKey(connectionId, record.entity, record.externalId),
                { jobId: job.id, waitMs: 5_000 },
                () =>
                  engine.syncRecord(
                    { tenantId, connectionId, entity: record.entity },
                    { externalId: record.externalId, kind: record.kind, occurredAt: new Date(record.occurredAt) },
                  ),
              )
              .pipe(
                // From the change at the source to it being stored here.
                Effect.tap(() => recordWebhookLag(new Date(record.occurredAt))),
                Effect.tap((result) =>
                  Effect.sync(() => {
                    synced.push({ entity: record.entity, ...result });
                    settled.push(...record.eventRowIds);
                  }),
                ),
              );
          yield* Effect.forEach(pending, syncOne, { discard: true }).pipe(
            Effect.ensuring(Effect.suspend(() => markProcessed(settled))),
          );
          return { records: records.length, synced };
        });

      const runDelivery = (job: RunningJob) =>
        Effect.gen(function* () {
          const { deliveryId } = job.payload as { readonly deliveryId: string };
          const exit = yield* outbound.attempt(deliveryId).pipe(Effect.exit);
          if (exit._tag === "Success") return { deliveryId, delivered: true };
          const failure = tagOf(exit.cause);
          if (failure.tag === "DeliveryRejected" || isLastAttempt(policy, job, exit.cause)) {
            yield* outbound.markDead(deliveryId, `${failure.message} (after ${job.attempt} attempts)`);
          }
          return yield* Effect.failCause(exit.cause);
        });

      const setupSchedules = Effect.fn("Syncs.setupSchedules")(function* (tenantId: string, connectionId: string) {
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
            locks
              .withLock(recordLockKey(input.connectionId, input.entity, change.externalId), { waitMs: 5_000 }, () =>
                engine.applyLocalChange(target, change.externalId, change.fields),
              )
              .pipe(
                Effect.map((r) => ({
                  externalId: change.externalId,
                  syncStatus: r.record.syncStatus,
                  pushedNow: r.pushedNow,
                })),
                Effect.catchAll(
                  (e): Effect.Effect<never, ResourceNotFound | InvalidInput | PreconditionFailed> =>
                    e._tag === "ResourceNotFound"
                      ? Effect.fail(e)
                      : e._tag === "LockHeld" || e._tag === "LockLost"
                        ? Effect.fail(
                            new PreconditionFailed({
                              message: `record ${change.externalId} is being synced; retry shortly`,
                            }),
                          )
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

        progress: Effect.fn("Syncs.progress")(function* (tenantId: string, jobId: string) {
          const job = yield* queue.get(jobId, tenantId);
          const run = (yield* runs.ofJob(jobId)).at(-1);
          const now = yield* Clock.currentTimeMillis;
          const processed = run ? run.created + run.updated + run.unchanged + run.deleted : 0;
          const seconds = run
            ? ((run.finishedAt ? new Date(run.finishedAt).getTime() : now) - new Date(run.startedAt).getTime()) / 1000
            : 0;
          const phase = finalJobStatuses.has(job.status)
            ? job.status
            : job.status === "queued" && job.attempts > 0
              ? "retrying"
              : job.status;
          return {
            jobId,
            kind: job.kind,
            status: job.status,
            attempt: job.attempts,
            maxAttempts: job.maxAttempts,
            phase,
            pages: run?.pages ?? 0,
            processed,
            created: run?.created ?? 0,
            updated: run?.updated ?? 0,
            unchanged: run?.unchanged ?? 0,
            deleted: run?.deleted ?? 0,
            errors: run?.itemErrors ?? 0,
            recordsPerSecond: seconds > 0 ? Math.round((processed / seconds) * 10) / 10 : 0,
            startedAt: job.startedAt,
            finishedAt: job.finishedAt,
            error: job.lastError?.message ?? run?.errorMessage ?? null,
          } satisfies JobProgress;
        }),

        createConnection: Effect.fn("Syncs.createConnection")(function* (tenantId: string, input: CreateConnection) {
          return yield* db.transaction(
            Effect.gen(function* () {
              const created = yield* connections.create(tenantId, input);
              yield* setupSchedules(tenantId, created.id).pipe(Effect.orDie);
              return created;
            }),
          );
        }),

        setupSchedules,

        handlers: {
          [SYNC_JOB_KIND]: { run: runSync, refreshCredentials },
          [WEBHOOK_EVENT_JOB_KIND]: { run: runWebhookEvent, refreshCredentials },
          [WEBHOOK_DELIVERY_JOB_KIND]: { run: runDelivery },
        },
      };
    }),
  );
}
