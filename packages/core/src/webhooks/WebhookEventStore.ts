import { type Kysely, sql } from "kysely";
import { preparedAs } from "../db/PreparedStatements.ts";
import type { DB } from "../db/schema.ts";
import { insertJobsSelecting, type NewJob } from "../queue/JobStore.ts";

/**
 * The inbound events' statements, as plain functions over Kysely: the one module that writes
 * `webhook_events`. The intake's statement stores events and their jobs together, composing
 * the jobs owner's fragment (JobStore's `insertJobsSelecting`).
 */

/** One event of a delivery, as the intake's statement takes it. */
export interface IntakeEvent {
  /** The row's id. */
  readonly id: string;
  readonly tenant_id: string;
  readonly connection_id: string;
  readonly event_id: string;
  readonly entity: string;
  readonly external_id: string;
  readonly kind: string;
  /** ISO-8601. */
  readonly occurred_at: string;
  /** The delivery's index in the batch: one job per delivery. */
  readonly delivery: number;
  /** The event's index in its delivery. */
  readonly position: number;
}

/**
 * Stores a batch of deliveries in ONE statement: their events (each new event id once) and a job
 * per delivery, built by the statement from the events it stored (`job` gives the queue's
 * columns, as `JobQueue.prepare` builds them). An event is never stored without its job (a
 * vendor's retry of it would be a duplicate and never queued again), and a delivery of
 * duplicates only queues nothing. The job lists the delivery's records: a record's events
 * coalesce (the job reads its current state, so later events add only their ids, marked
 * processed together), with the newest event's kind and time. Answers the ids of the events
 * stored; a duplicate event id, stored earlier or earlier in this batch, is skipped by the
 * conflict clause.
 */
export const storeDeliveries = async (
  db: Kysely<DB>,
  events: ReadonlyArray<IntakeEvent>,
  job: NewJob,
): Promise<ReadonlyArray<{ readonly id: string }>> => {
  const { rows } = await sql<{ id: string }>`${preparedAs("webhook_intake")}
              with input as (
                select * from jsonb_to_recordset(${JSON.stringify(events)}::jsonb) as i(id uuid, tenant_id uuid,
                  connection_id uuid, event_id text, entity text, external_id text, kind text, occurred_at timestamptz,
                  delivery integer, position integer)
              ), stored as (
                insert into webhook_events (id, tenant_id, connection_id, event_id, entity, external_id, kind, occurred_at)
                select id, tenant_id, connection_id, event_id, entity, external_id, kind, occurred_at from input
                on conflict (connection_id, event_id) do nothing
                returning id
              ), records as (
                select i.delivery, i.tenant_id, i.connection_id, min(i.position) as position,
                  jsonb_build_object(
                    'entity', i.entity, 'externalId', i.external_id,
                    'kind', (array_agg(i.kind order by i.occurred_at desc, i.position desc))[1],
                    'occurredAt', max(i.occurred_at),
                    'eventRowIds', jsonb_agg(i.id order by i.position)) as record
                from input i join stored s on s.id = i.id
                group by i.delivery, i.tenant_id, i.connection_id, i.entity, i.external_id
              ), queued as (${insertJobsSelecting({
                job,
                payload: sql`jsonb_build_object('connectionId', r.connection_id, 'records', jsonb_agg(r.record order by r.position))`,
                tenantId: sql`r.tenant_id`,
                connectionId: sql`r.connection_id`,
                from: sql`from records r
                group by r.delivery, r.tenant_id, r.connection_id`,
              })}
              )
              select id from stored`.execute(db);
  return rows;
};

/**
 * Marks event rows processed (their record synced). Syncs' webhook handler should call this
 * rather than update `webhook_events` itself; it is the one writer of the table besides the intake.
 */
export const markProcessed = async (db: Kysely<DB>, rowIds: ReadonlyArray<string>, at: Date): Promise<void> => {
  if (rowIds.length === 0) return;
  await db.updateTable("webhook_events").set({ processed_at: at }).where("id", "in", rowIds).execute();
};
