import { randomUUID } from "node:crypto";
import { Effect } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import type { ScheduleRow } from "../../db/schema.ts";
import { InvalidInput, ResourceNotFound } from "../../errors/Errors.ts";
import { parseCron } from "../cronTicks.ts";
import { currentDate } from "../currentDate.ts";
import { JobPriority, priorityValue } from "../jobs/priority.ts";
import type { ScheduleInput } from "../Scheduler.ts";
import * as store from "../ScheduleStore.ts";
import { expressionOf, toView } from "./scheduleView.ts";

/** A schedule's row by name; ResourceNotFound when there is none. */
export const scheduleNamed = (db: DatabaseService, name: string): Effect.Effect<ScheduleRow, ResourceNotFound> =>
  db
    .query((k) => store.byName(k, name))
    .pipe(
      Effect.orDie,
      Effect.flatMap((row) =>
        row === undefined ? Effect.fail(new ResourceNotFound({ resource: "schedule", id: name })) : Effect.succeed(row),
      ),
    );

/** Creates or replaces a schedule by name; its first tick is the first one after now. */
export const upsertSchedule = Effect.fn("Scheduler.upsert")(function* (db: DatabaseService, input: ScheduleInput) {
  if (expressionOf(input.cron) === undefined) {
    let message = "invalid cron expression";
    try {
      parseCron(input.cron);
    } catch (e) {
      message = `invalid cron expression: ${e instanceof Error ? e.message : String(e)}`;
    }
    return yield* new InvalidInput({ issues: [{ path: "cron", message }] });
  }
  const at = yield* currentDate;
  const values: store.ScheduleValues = {
    cron: input.cron,
    kind: input.kind,
    payload: JSON.stringify(input.payload ?? {}),
    priority: priorityValue(input.priority, JobPriority.delta),
    tenant_id: input.tenantId ?? null,
    connection_id: input.connectionId ?? null,
    entity: input.entity ?? null,
    max_attempts: input.maxAttempts ?? null,
    dedupe_key: input.dedupeKey ?? null,
    updated_at: at,
  };
  yield* db.query((k) => store.upsert(k, { id: randomUUID(), name: input.name, values, now: at })).pipe(Effect.orDie);
  return toView(yield* scheduleNamed(db, input.name).pipe(Effect.orDie));
});
