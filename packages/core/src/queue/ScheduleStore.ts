import { type Kysely, type RawBuilder, sql } from "kysely";
import type { DB, ScheduleRow } from "../db/schema.ts";

/**
 * The scheduler's statements, as plain functions over Kysely: the one module that writes
 * `schedules` and `schedule_ticks`. The queue's pruning composes `deleteTicksBefore` into its
 * own statement.
 */

/** A schedule's columns as `upsert` writes them (its name, id and anchor apart). */
export interface ScheduleValues {
  readonly cron: string;
  readonly kind: string;
  /** JSON text. */
  readonly payload: string;
  readonly priority: number;
  readonly tenant_id: string | null;
  readonly connection_id: string | null;
  readonly entity: string | null;
  readonly max_attempts: number | null;
  readonly dedupe_key: string | null;
  readonly updated_at: Date;
}

/** A schedule by its unique name. */
export const byName = (db: Kysely<DB>, name: string): Promise<ScheduleRow | undefined> =>
  db.selectFrom("schedules").selectAll().where("name", "=", name).executeTakeFirst();

/**
 * Creates the schedule, or replaces the one of that name. A new one, or one whose expression
 * changed, is anchored at `now` (its first tick is the first after it); an unchanged expression
 * keeps its place.
 */
export const upsert = async (
  db: Kysely<DB>,
  o: { readonly id: string; readonly name: string; readonly values: ScheduleValues; readonly now: Date },
): Promise<void> => {
  await db
    .insertInto("schedules")
    .values({ id: o.id, name: o.name, last_tick_at: o.now, created_at: o.now, ...o.values })
    .onConflict((oc) =>
      oc.column("name").doUpdateSet({
        ...o.values,
        last_tick_at: (eb) =>
          eb.case().when("schedules.cron", "=", o.values.cron).then(eb.ref("schedules.last_tick_at")).else(o.now).end(),
      }),
    )
    .execute();
};

/** Schedules by name, optionally of one connection. */
export const list = (db: Kysely<DB>, filter: { readonly connectionId?: string }): Promise<ReadonlyArray<ScheduleRow>> =>
  db
    .selectFrom("schedules")
    .selectAll()
    .$if(filter.connectionId !== undefined, (q) => q.where("connection_id", "=", filter.connectionId!))
    .orderBy("name")
    .execute();

export const deleteByName = async (db: Kysely<DB>, name: string): Promise<void> => {
  await db.deleteFrom("schedules").where("name", "=", name).execute();
};

/**
 * Pauses or resumes the schedule of a name, or every schedule of a connection; answers how many
 * changed. Resuming moves the anchor to `now`, so ticks that fell in the pause do not fire.
 */
export const setPaused = async (
  db: Kysely<DB>,
  paused: boolean,
  where: { readonly name: string } | { readonly connectionId: string },
  now: Date,
): Promise<number> => {
  const result = await db
    .updateTable("schedules")
    .set(paused ? { paused, updated_at: now } : { paused, updated_at: now, last_tick_at: now })
    .where("paused", "=", !paused)
    .$if("name" in where, (q) => q.where("name", "=", (where as { name: string }).name))
    .$if("connectionId" in where, (q) =>
      q.where("connection_id", "=", (where as { connectionId: string }).connectionId),
    )
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
};

/** Active schedules whose connection (if any) is not paused: the ones a pass may fire. */
export const active = (db: Kysely<DB>): Promise<ReadonlyArray<ScheduleRow>> =>
  db
    .selectFrom("schedules")
    .leftJoin("connections", "connections.id", "schedules.connection_id")
    .selectAll("schedules")
    .where("schedules.paused", "=", false)
    .where((eb) => eb.or([eb("connections.paused", "is", null), eb("connections.paused", "=", false)]))
    .execute();

/** The expression and anchor of every unpaused schedule, to time the next pass. */
export const anchors = (db: Kysely<DB>): Promise<ReadonlyArray<Pick<ScheduleRow, "cron" | "last_tick_at">>> =>
  db.selectFrom("schedules").select(["cron", "last_tick_at"]).where("paused", "=", false).execute();

/**
 * Moves an unpaused schedule's anchor forward to `tick`; false when it is paused or already at or
 * past it (another process fired the tick). The row lock it takes orders concurrent firers.
 */
export const advanceTo = async (db: Kysely<DB>, scheduleId: string, tick: Date, now: Date): Promise<boolean> => {
  const moved = await db
    .updateTable("schedules")
    .set({ last_tick_at: tick, updated_at: now })
    .where("id", "=", scheduleId)
    .where("paused", "=", false)
    .where("last_tick_at", "<", tick)
    .executeTakeFirst();
  return Number(moved.numUpdatedRows) > 0;
};

/** Records the job a tick fired. The (schedule, tick) unique key is the last guard against a second one. */
export const insertTick = async (
  db: Kysely<DB>,
  tick: { readonly scheduleId: string; readonly tickAt: Date; readonly jobId: string; readonly now: Date },
): Promise<void> => {
  await db
    .insertInto("schedule_ticks")
    .values({ schedule_id: tick.scheduleId, tick_at: tick.tickAt, job_id: tick.jobId, created_at: tick.now })
    .execute();
};

/** A data-modifying CTE body deleting ticks recorded before `before` (the queue's pruning composes it). */
export const deleteTicksBefore = (before: Date): RawBuilder<unknown> =>
  sql`
      delete from schedule_ticks where created_at < ${before}
    `;
