import type { ConnectorError } from "@tandem/connector-sdk";
import { type Effect, Schema } from "effect";
import type { ResourceNotFound } from "../errors/Errors.ts";
import type { SyncItemError, SyncResult } from "./SyncJob.ts";

/*
 * The vocabulary of an entity sync: what a run is given, what it reports and what it fails
 * with. The strategies (one module each) and the EntitySync service share it.
 */

/** Which entity of which connection. */
export interface SyncTarget {
  readonly tenantId: string;
  readonly connectionId: string;
  readonly entity: string;
}

/** What a run does: read everything, read changes, compare ids, or push local changes. */
export type SyncMode = "full" | "delta" | "reconcile" | "push";

/** Tuning of one run; every field has a default. */
export interface SyncRunOptions {
  /** Records per checkpoint, and per upsert statement up to `writeConcurrency` splits. Default 500. */
  readonly batchSize?: number;
  /**
   * A batch of at least `writeConcurrency` x 1,000 records (a large page) is written as that many
   * statements at once, on separate connections, then checkpointed: the database's work per row
   * is most of an import's time and spreads over its cores. Default 2.
   */
  readonly writeConcurrency?: number;
  /** Delta reads start this long before the stored cursor (clock skew, late commits). Default 5 minutes. */
  readonly overlapMs?: number;
  /**
   * Reconciliation deletes at most this share of the stored records; above it, it queues them
   * all for review (the mass-deletion guard). Default: the engine's `DeletionGuardConfig` (0.2).
   */
  readonly maxDeleteShare?: number;
  /**
   * A delta's (or full read's) tombstones may delete at most this many records of the entity
   * within `deletionWindowMinutes`; beyond it they are queued for review. Default: the engine's
   * `DeletionGuardConfig` (100 in 60 minutes).
   */
  readonly maxDeletions?: number;
  readonly deletionWindowMinutes?: number;
  /**
   * Deletes whatever the guard would hold (an operator confirmed it), and settles the queued
   * deletions it applies as approved. Default false.
   */
  readonly allowMassDeletion?: boolean;
  /** A read longer than this many pages is failed as runaway. Default 1,000,000. */
  readonly maxPages?: number;
  /** Concurrent `get`/`write` calls (reconcile fetches, pushes). Default 4. */
  readonly concurrency?: number;
  /** A read that produces no page for this long fails as Unavailable (a hung connector). Default 5 minutes. */
  readonly pageTimeoutMs?: number;
  /** Item errors listed in a result; beyond it they are counted in one summary entry. Default 1,000. */
  readonly maxItemErrors?: number;
  /**
   * Called after each stored batch (full and delta) with the run's totals so far:
   * live progress for `jobs.watch`. Its failures are the caller's, not the run's.
   */
  readonly onProgress?: (progress: SyncProgress) => Effect.Effect<void>;
}

/** A running sync's totals so far. */
export interface SyncProgress {
  readonly phase: "reading" | "done";
  readonly pages: number;
  readonly created: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly deleted: number;
  readonly errors: number;
}

/** What reconciliation would have deleted when the mass-deletion guard stopped it. */
export interface Quarantine {
  readonly at: string;
  readonly wouldDelete: number;
  readonly stored: number;
  readonly share: number;
  readonly sample: ReadonlyArray<string>;
}

/** A run's result: the SyncJob result plus what this mode reports. */
export interface SyncRunResult extends SyncResult {
  readonly mode: SyncMode;
  readonly pages: number;
  /** The run continued from the checkpoint of an interrupted run. */
  readonly resumed: boolean;
  /** Reconciliation stopped by the mass-deletion guard's share rule (nothing was deleted). */
  readonly quarantine?: Quarantine;
  /**
   * Reconciliation of an entity whose `readIds` lists modification times: stored records the
   * remote listed as modified after our copy (updates every delta missed), all re-fetched; they
   * are counted in `updated` (or `unchanged`) as well. Absent when the listing had no times.
   */
  readonly drifted?: number;
  /**
   * Deletions the remote reported that the mass-deletion guard left in the review queue, the
   * records still live (absent when none). See DeletionQuarantine.
   */
  readonly quarantined?: number;
  /** Delta cursor after the run (full and delta). */
  readonly deltaCursor?: string | null;
}

/** What testing a connection found (see `EntitySync.check`). */
export interface ConnectionCheck {
  readonly ok: boolean;
  /** False when the connector has no check: nothing was called. */
  readonly checked: boolean;
  /** Why the check failed: the connector's error reason (AuthExpired, Unavailable, ...) and message. */
  readonly error?: { readonly type: string; readonly message: string };
}

/** A connector broke the page contract: not `{ records: [], cursor? }`, or a cursor that repeats. */
export class InvalidPage extends Schema.TaggedError<InvalidPage>()("InvalidPage", {
  connector: Schema.String,
  entity: Schema.String,
  message: Schema.String,
}) {}

/** The connector has no such entity, or the entity lacks what the operation needs (`get`, `write`, ...). */
export class EntityNotSupported extends Schema.TaggedError<EntityNotSupported>()("EntityNotSupported", {
  connector: Schema.String,
  entity: Schema.String,
  message: Schema.String,
}) {}

/** What a run can fail with (item errors are in the result instead). */
export type SyncRunError = ConnectorError | InvalidPage | EntityNotSupported | ResourceNotFound;

/** What a webhook-triggered single-record sync did. */
export interface SyncRecordResult {
  /** `quarantined`: a deletion the mass-deletion guard queued for review; the record stays live. */
  readonly action: "created" | "updated" | "unchanged" | "deleted" | "quarantined" | "failed";
  readonly externalId: string;
  readonly error?: SyncItemError;
}

/** An inbound event about one record (from a connector's `webhooks.parse`). */
export interface RecordEvent {
  readonly externalId: string;
  readonly kind?: "created" | "updated" | "deleted" | "merged" | "restored";
  /** When the change happened at the source: a delete event older than the stored record is ignored. */
  readonly occurredAt?: Date;
}

/** Batch import: how to split and what to do with invalid records. */
export interface ImportOptions {
  /** Records per batch. Default 500. */
  readonly batchSize?: number;
  /** Batches validated concurrently. Default 4. */
  readonly concurrency?: number;
  /**
   * "all-or-nothing" (default): any invalid record and nothing is committed.
   * "skip-invalid": valid records are committed, invalid ones reported.
   */
  readonly onInvalid?: "all-or-nothing" | "skip-invalid";
}

/** Batch import result: the run result, and whether anything was committed. */
export interface ImportResult extends SyncResult {
  readonly committed: boolean;
  readonly batches: number;
}
