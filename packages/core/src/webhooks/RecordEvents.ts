import { Context, Duration, Effect, Layer, type Scope } from "effect";
import { Database } from "../db/Database.ts";
import { JobQueue } from "../queue/JobQueue.ts";
import { dispatchRecordEvents } from "./outbound/dispatchRecordEvents.ts";

/** Changes turned into events per transaction (one scope's batch). */
const BATCH_SIZE = 500;

/** The dispatcher's operations; see RecordEvents. */
export interface RecordEventsService {
  /** One pass over every scope with undispatched changes (a batch each); answers how many changes it dispatched. */
  readonly dispatch: Effect.Effect<number>;
  /**
   * Runs the dispatcher in this process until the Scope closes: a pass, again at once while
   * passes find changes, else after `pollMs` (default 1 s). Every process with a worker runs one;
   * each scope's cursor is dispatched by one of them at a time (a row lock).
   */
  readonly run: (options?: { readonly pollMs?: number }) => Effect.Effect<void, never, Scope.Scope>;
}

/**
 * Outbound `record.*` events from the change feed: every change of every path (sync runs, webhook
 * jobs, local edits, push results, conflict settlements and resolutions) becomes an event, because
 * the dispatcher reads the feed itself rather than being told by each path.
 *
 * - A cursor per connection x entity (`record_event_cursors`) holds the feed position up to which
 *   events were made. A pass takes a scope's cursor with a row lock (`FOR UPDATE SKIP LOCKED`, so
 *   one dispatcher per cursor across the cluster), reads the next changes below the feed's commit
 *   horizon, writes one event per change (a delivery per subscription that wants its type, each
 *   with its attempt job) and moves the cursor, all in one transaction: every change becomes its
 *   events exactly once. Delivery is then at least once, retried by the queue.
 * - Each event has its own id; a record's events carry their feed `position` and are delivered to a
 *   subscription in feed order (see attemptDelivery).
 * - The feed holds each record's latest state, so changes a record went through between two passes
 *   arrive as one event with the latest state (at most `pollMs` apart when the dispatcher keeps up).
 * - A tenant's first `record.*` subscription starts the cursors at the end of the feed
 *   (OutboundWebhooks.create): it hears of changes from then on, not of the history.
 */
export class RecordEvents extends Context.Tag("@tandem/core/RecordEvents")<RecordEvents, RecordEventsService>() {
  /** Needs Database and JobQueue. */
  static readonly layerNoDeps = Layer.effect(
    RecordEvents,
    Effect.gen(function* () {
      const db = yield* Database;
      const queue = yield* JobQueue;
      const dispatch = dispatchRecordEvents({ db, queue, batchSize: BATCH_SIZE });
      return RecordEvents.of({
        dispatch,
        run: (options = {}) =>
          Effect.gen(function* () {
            const pollMs = options.pollMs ?? 1_000;
            while (true) {
              const changes = yield* dispatch.pipe(
                Effect.catchAllCause((cause) => Effect.as(Effect.logWarning("record event dispatch failed", cause), 0)),
              );
              if (changes === 0) yield* Effect.sleep(Duration.millis(pollMs));
            }
          }).pipe(Effect.forkScoped, Effect.asVoid),
      });
    }),
  );

  /** Needs Database. */
  static readonly layer = RecordEvents.layerNoDeps.pipe(Layer.provide(JobQueue.layer));
}
