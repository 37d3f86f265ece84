import { Clock, type Context, Effect } from "effect";
import type { Database } from "../db/Database.ts";
import { recordWebhookLag } from "../ops/MetricsReport.ts";
import type { RunningJob } from "../queue/JobQueue.ts";
import { type Locks, recordLockKey } from "../queue/Locks.ts";
import * as WebhookEventStore from "../webhooks/WebhookEventStore.ts";
import type { EntitySync, SyncRecordResult } from "./EntitySync.ts";

/** Job kind of an inbound webhook delivery: fetch each record it names and upsert or delete it. */
export const WEBHOOK_EVENT_JOB_KIND = "webhook.event";

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

export interface WebhookEventJobDeps {
  readonly db: Context.Tag.Service<Database>;
  readonly engine: Context.Tag.Service<EntitySync>;
  readonly locks: Context.Tag.Service<Locks>;
}

/** The given event rows that no attempt has marked processed yet. */
const unprocessedRows = (db: WebhookEventJobDeps["db"], rowIds: ReadonlyArray<string>) =>
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

/** Settles the rows through their owner (webhooks/WebhookEventStore). */
const markProcessed = (db: WebhookEventJobDeps["db"], rowIds: ReadonlyArray<string>) =>
  rowIds.length === 0
    ? Effect.void
    : Effect.gen(function* () {
        const at = new Date(yield* Clock.currentTimeMillis);
        yield* db.query((k) => WebhookEventStore.markProcessed(k, rowIds, at)).pipe(Effect.orDie);
      });

/**
 * Syncs each record a delivery named, in order. A retry resumes: a record whose event rows
 * an earlier attempt marked processed is done. A record that fails ends the attempt; the
 * rows of the records synced before it are marked all the same, in one statement.
 */
export const runWebhookEventJob = ({ db, engine, locks }: WebhookEventJobDeps, job: RunningJob) =>
  Effect.gen(function* () {
    const { connectionId, records } = webhookRecordsOf(job.payload);
    const tenantId = job.tenantId!;
    const unprocessed = yield* unprocessedRows(
      db,
      records.flatMap((r) => r.eventRowIds),
    );
    const pending = records.filter(
      (r) => r.eventRowIds.length === 0 || r.eventRowIds.some((id) => unprocessed.has(id)),
    );
    const synced: Array<SyncRecordResult & { readonly entity: string }> = [];
    const settled: Array<string> = [];
    const syncOne = (record: WebhookRecordEvents) =>
      // A pull of one record never interleaves with a push of it (SyncTriggers.push takes the same lock);
      // a lock held elsewhere fails the attempt, and the queue retries it.
      locks
        .withLock(recordLockKey(connectionId, record.entity, record.externalId), { jobId: job.id, waitMs: 5_000 }, () =>
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
      Effect.ensuring(Effect.suspend(() => markProcessed(db, settled))),
    );
    return { records: records.length, synced };
  });
