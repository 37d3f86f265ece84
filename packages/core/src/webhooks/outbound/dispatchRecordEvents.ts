import { randomUUID } from "node:crypto";
import { Clock, type Context, Effect } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import type { JobQueue } from "../../queue/JobQueue.ts";
import { type FeedEntry, readFeed } from "../../store/ChangeFeed.ts";
import { encodeFeedPosition, type FeedPosition } from "../../store/FeedPosition.ts";
import type { RecordScope } from "../../store/RecordStore.ts";
import type { OutboundEventType } from "../OutboundWebhooks.ts";
import { advanceCursor, lockCursor, scopesToDispatch } from "../RecordEventCursors.ts";
import * as deliveries from "../WebhookDeliveryStore.ts";
import { liveSubscriptions, scheduleAttempts } from "./emitEvents.ts";

/** What dispatching needs. */
export interface DispatchDeps {
  readonly db: DatabaseService;
  readonly queue: Context.Tag.Service<JobQueue>;
  /** Changes turned into events per transaction. */
  readonly batchSize: number;
}

/** The deliveries of one record's events share this key: they reach a subscription in feed order. */
const orderingKey = (scope: RecordScope, id: string) => `record:${scope.connectionId}:${scope.entity}:${id}`;

/**
 * The event of one change. A record inserted by a transaction after the cursor's was never told
 * about: `record.created`, even when it changed again before the dispatcher read it (the feed holds
 * a record's latest state, so changes between two reads of it arrive as one event with that state).
 */
const eventOf = (scope: RecordScope, entry: FeedEntry, after: FeedPosition) => {
  const { record, position } = entry;
  const created =
    BigInt(entry.createdXid) > BigInt(after.xid) ||
    // Inserted by the cursor's own transaction, and not changed since: after the cursor, so not told yet.
    (entry.createdXid === after.xid && position.xid === entry.createdXid);
  const type: OutboundEventType =
    record.deletedAt !== null ? "record.deleted" : created ? "record.created" : "record.updated";
  return {
    type,
    data: {
      connectionId: scope.connectionId,
      entity: scope.entity,
      // Both ids: the vendor's (null until a local create reached it) and the host's.
      externalId: record.provisional ? null : record.externalId,
      localId: record.localId,
      // The change's place in the feed: a record's later change has a later position.
      position: encodeFeedPosition(position),
      version: record.version,
      ...(record.deletedAt === null ? { record: record.data } : { deletedAt: record.deletedAt.toISOString() }),
    },
  };
};

/**
 * Turns the next batch of the scope's changes into `record.*` events, in one transaction that
 * holds the scope's cursor: one event per change (one id, delivered to every live subscription of
 * the tenant that wants its type), each delivery with its attempt job, and the cursor moved past
 * the batch. Committed together, so each change becomes its events exactly once; a crash before
 * the commit leaves the cursor where it was. Answers how many changes it took (none when another
 * process holds the cursor).
 */
export const dispatchScope = (deps: DispatchDeps, scope: RecordScope) =>
  deps.db.transaction(
    Effect.gen(function* () {
      const { db } = deps;
      const after = yield* db.query((k) => lockCursor(k, scope)).pipe(Effect.orDie);
      if (after === undefined) return 0;
      const entries = yield* db.query((k) => readFeed(k, scope, after, deps.batchSize)).pipe(Effect.orDie);
      const last = entries.at(-1);
      if (last === undefined) return 0;
      const wanting = yield* liveSubscriptions(db, scope.tenantId);
      const createdAt = new Date(yield* Clock.currentTimeMillis).toISOString();
      const rows = entries.flatMap((entry) => {
        const event = eventOf(scope, entry, after);
        const wanted = wanting.filter((s) => s.events.includes(event.type));
        if (wanted.length === 0) return [];
        const eventId = randomUUID();
        const payload = JSON.stringify({ id: eventId, type: event.type, createdAt, data: event.data });
        return wanted.map(
          (s): deliveries.NewDelivery => ({
            id: randomUUID(),
            tenant_id: scope.tenantId,
            subscription_id: s.id,
            event_id: eventId,
            event_type: event.type,
            payload,
            // A record created locally changes external id when the vendor creates it: its
            // host id keeps its events in one order.
            ordering_key: orderingKey(scope, entry.record.localId ?? entry.record.externalId),
          }),
        );
      });
      if (rows.length > 0) {
        yield* db.query((k) => deliveries.insertMany(k, rows)).pipe(Effect.orDie);
        yield* scheduleAttempts(
          deps.queue,
          scope.tenantId,
          rows.map((r) => r.id),
        );
      }
      yield* db.query((k) => advanceCursor(k, scope, last.position)).pipe(Effect.orDie);
      return entries.length;
    }),
  );

/**
 * One pass over every scope with changes to dispatch (tenants subscribed to `record.*`): a batch
 * each, so one busy scope does not hold the others back. Answers how many changes it dispatched.
 */
export const dispatchRecordEvents = (deps: DispatchDeps) =>
  Effect.gen(function* () {
    const scopes = yield* deps.db.query(scopesToDispatch).pipe(Effect.orDie);
    let changes = 0;
    for (const scope of scopes) changes += yield* dispatchScope(deps, scope);
    return changes;
  }).pipe(Effect.withSpan("RecordEvents.dispatch"));
