import { Effect } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import { AlreadyRunning, ResourceNotFound } from "../../errors/Errors.ts";
import { currentDate } from "../currentDate.ts";
import * as store from "../JobStore.ts";
import { jobRow, toView } from "./jobViews.ts";
import type { QueueDeps } from "./QueueDeps.ts";

/** Sends a dead job back to the queue with a fresh set of attempts (its history stays). */
export const replayDeadJob = Effect.fn("JobQueue.replay")(function* (deps: QueueDeps, id: string, tenantId?: string) {
  const { db } = deps;
  const job = yield* jobRow(db, id, tenantId);
  if (job.status !== "dead") return yield* new ResourceNotFound({ resource: "dead letter", id });
  const at = yield* currentDate;
  // The view is the row as this update left it: once the workers are woken, one may claim the
  // job before a second read, and the caller would see it running.
  const replayed = yield* db
    .query((k) => store.requeueDead(k, id, at))
    .pipe(
      Effect.catchTag("ConstraintViolation", (e) =>
        e.constraint === "jobs_dedupe"
          ? Effect.flatMap(db.query((k) => store.findLive(k, job.dedupe_key!)).pipe(Effect.orDie), (live) =>
              Effect.fail(new AlreadyRunning({ jobId: live?.id ?? "", key: job.dedupe_key! })),
            )
          : Effect.die(e),
      ),
    );
  yield* deps.wake;
  return toView(replayed ?? (yield* jobRow(db, id, tenantId)));
});

/** Deletes a dead job and its history. */
export const discardDeadJob = Effect.fn("JobQueue.discard")(function* (
  db: DatabaseService,
  id: string,
  tenantId?: string,
) {
  const job = yield* jobRow(db, id, tenantId);
  if (job.status !== "dead") return yield* new ResourceNotFound({ resource: "dead letter", id });
  yield* db.query((k) => store.deleteDead(k, id)).pipe(Effect.orDie);
  return { id };
});
