import type { PushOperation } from "../../db/schema.ts";
import type { OutboxEntry } from "../PushOutboxRows.ts";

/** A local change as the outbox sees it: what it asks of the vendor, and by when. */
export interface OutboxChange {
  readonly operation: PushOperation;
  /** It touched one of the entity's critical fields: due at once, drained with high priority. */
  readonly critical: boolean;
  readonly dueAt: Date;
  readonly at: Date;
}

/** What a local change does to its record's outbox entry. */
export type EntryWrite =
  | { readonly _tag: "Insert"; readonly change: OutboxChange }
  | {
      readonly _tag: "Coalesce";
      readonly id: string;
      readonly change: OutboxChange;
      /** A dead entry comes back with a fresh set of attempts. */
      readonly revive: boolean;
    }
  /** Nothing is left to push: a record created locally and deleted before its create was written. */
  | { readonly _tag: "Cancel"; readonly id: string };

/** The entry's write, and when a drain must run for it (undefined: one already will). */
export interface Coalesced {
  readonly write: EntryWrite;
  readonly wakeAt: Date | undefined;
}

/** Two operations on one record, in order, as one push. */
const mergeOperations = (earlier: PushOperation, later: PushOperation, inFlight: boolean): PushOperation | "cancel" => {
  if (later === "delete") {
    // A create not yet written needs no delete: nothing reaches the vendor. One being written may
    // land: its delete follows it.
    return earlier === "create" && !inFlight ? "cancel" : "delete";
  }
  // An edit of a record whose create is pending is part of the create (it sends the whole record);
  // the record's deletion outlives any later change (none can reach a deleted record).
  return earlier === "update" ? later : earlier;
};

/**
 * Coalesces a local change into its record's outbox entry (pure: the caller holds the entry's row
 * lock). Changes to one record wait in one entry and go as one write: the entry is due at the
 * earliest due time of its changes (a critical change makes it due at once), so a record edited
 * three times within the push interval is written once. An entry being written (claimed, in
 * flight) is kept for the next write by its new revision. A drain must be woken when the entry is
 * new, comes back from the dead, or became due earlier than before; otherwise the drain that was
 * woken for it still will see it.
 */
export const coalesceEntry = (existing: OutboxEntry | undefined, change: OutboxChange): Coalesced => {
  if (existing === undefined) return { write: { _tag: "Insert", change }, wakeAt: change.dueAt };
  const inFlight = existing.status === "pending" && existing.claimedUntil !== null && existing.claimedUntil > change.at;
  const operation = mergeOperations(existing.operation, change.operation, inFlight);
  if (operation === "cancel") return { write: { _tag: "Cancel", id: existing.id }, wakeAt: undefined };
  const revive = existing.status === "dead";
  const dueAt = revive || change.dueAt < existing.dueAt ? change.dueAt : existing.dueAt;
  const critical = revive ? change.critical : existing.critical || change.critical;
  const wakeAt = revive || (!inFlight && dueAt < existing.dueAt) ? dueAt : undefined;
  return {
    write: { _tag: "Coalesce", id: existing.id, change: { ...change, operation, critical, dueAt }, revive },
    wakeAt,
  };
};
