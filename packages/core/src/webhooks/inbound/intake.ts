import { randomUUID } from "node:crypto";
import type { WebhookEvent } from "@tandem/connector-sdk";
import { Cause, Chunk, type Context, Effect, Exit, type Scope } from "effect";
import { type DatabaseService, DatabaseUnavailable } from "../../db/Database.ts";
import * as GroupCommit from "../../db/GroupCommit.ts";
import { ResourceNotFound } from "../../errors/Errors.ts";
import type { JobQueue } from "../../queue/JobQueue.ts";
import { WEBHOOK_EVENT_JOB_KIND } from "../../sync/webhookEventJob.ts";
import { type IntakeEvent, storeDeliveries } from "../WebhookEventStore.ts";

/** Deliveries stored by one statement, at most (HubSpot sends up to 100 events in one). */
const MAX_DELIVERIES_PER_COMMIT = 200;

/** A verified delivery's events about entities the connector syncs, waiting to be stored. */
export interface Delivery {
  readonly tenantId: string;
  readonly connector: string;
  readonly connectionId: string;
  readonly events: ReadonlyArray<WebhookEvent>;
}

/** Stores a delivery with the next batch; answers how many of its events were new. */
export type Intake = (delivery: Delivery) => Effect.Effect<{ readonly accepted: number }, ResourceNotFound>;

/** Stores a batch of deliveries in one statement (see `storeDeliveries`); answers, per delivery, how many events were new. */
const storeAll = (db: DatabaseService, queue: Context.Tag.Service<JobQueue>, batch: ReadonlyArray<Delivery>) =>
  Effect.gen(function* () {
    const owner = new Map<string, number>();
    const events: IntakeEvent[] = [];
    batch.forEach((d, delivery) => {
      d.events.forEach((e, position) => {
        const id = randomUUID();
        owner.set(id, delivery);
        events.push({
          id,
          tenant_id: d.tenantId,
          connection_id: d.connectionId,
          event_id: e.eventId,
          entity: e.entity,
          external_id: e.externalId,
          kind: e.kind,
          occurred_at: e.occurredAt.toISOString(),
          delivery,
          position,
        });
      });
    });
    // The queue's columns (priority, attempts, times) for every job of the batch, as it enqueues one.
    const [job] = yield* queue
      .prepare([{ kind: WEBHOOK_EVENT_JOB_KIND, payload: {}, priority: "webhook" }])
      .pipe(Effect.orDie);
    const stored = yield* db.query((k) => storeDeliveries(k, events, job!));
    const accepted = batch.map(() => 0);
    for (const row of stored) accepted[owner.get(row.id)!]!++;
    return accepted;
  });

/**
 * Deliveries are group-committed: concurrent requests share one statement, instead of
 * four round trips each (begin, events, jobs, commit), which under load were most of a
 * request's time. A batch that fails (a deleted connection, a value the database refuses)
 * is written again one delivery per statement (GroupCommit's retry apart), so only the
 * delivery at fault fails: a deleted connection's answers 404 (and `forget` drops it from the
 * endpoint cache), and no other tenant's delivery shares another's failure. Not when the
 * database is unreachable: every delivery would meet that alone too.
 */
export const makeIntake = (deps: {
  readonly db: DatabaseService;
  readonly queue: Context.Tag.Service<JobQueue>;
  readonly forget: (connectionId: string) => Effect.Effect<void>;
}): Effect.Effect<Intake, never, Scope.Scope> =>
  Effect.gen(function* () {
    /** A connection deleted after it was cached: its endpoint is gone. */
    const endpointGone = (d: Delivery) =>
      deps
        .forget(d.connectionId)
        .pipe(
          Effect.zipRight(
            Effect.fail(new ResourceNotFound({ resource: "webhook endpoint", id: `${d.connector}/${d.connectionId}` })),
          ),
        );
    const deliveries = yield* GroupCommit.make<Delivery, { readonly accepted: number }, ResourceNotFound>({
      maxBatch: MAX_DELIVERIES_PER_COMMIT,
      // One commit in flight: deliveries arriving meanwhile share the next one. With two, at
      // a steady 500 deliveries/s nearly every delivery found a free writer and went alone
      // (1.3 per statement), which doubled the database's work and the ack's tail; flat out,
      // one writer stored as many events per second (bench/README.md).
      concurrency: 1,
      write: (batch) =>
        storeAll(deps.db, deps.queue, batch).pipe(
          Effect.map((accepted) => accepted.map((n) => Exit.succeed({ accepted: n }))),
          Effect.catchTag("ConstraintViolation", (e) =>
            e.kind === "foreign_key" && batch.length === 1 ? endpointGone(batch[0]!) : Effect.die(e),
          ),
          // The jobs are committed: wake this process's workers and announce them to the others'.
          Effect.tap(() => deps.queue.nudge),
        ),
      retryApart: (cause) => !Chunk.some(Cause.defects(cause), (d) => d instanceof DatabaseUnavailable),
    });
    return deliveries.submit;
  });
