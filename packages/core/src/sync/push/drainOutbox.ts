import { AuthExpired, isVersionConflict } from "@tandem/connector-sdk";
import { decodeRecord, versionOf } from "@tandem/connector-sdk/runtime";
import { Clock, type Context, Effect, Either, Fiber } from "effect";
import { refreshPlannerStatistics } from "../../db/PlannerStatistics.ts";
import type { PushOperation } from "../../db/schema.ts";
import type { RetryPolicy } from "../../queue/RetryPolicy.ts";
import type { ClaimedEntry, PushOutbox, PushRecord, PushSettlement } from "../../store/PushOutbox.ts";
import { fetchAndStore } from "../fetchByIds.ts";
import { type PullSettlementDeps, toIncoming } from "../PullSettlement.ts";
import type { ResolvedEntity } from "../ResolvedEntity.ts";
import type { SyncItemError } from "../SyncJob.ts";
import { decodeFields, writableOnly } from "./localChangeFields.ts";
import type { PushSettings } from "./PushConfig.ts";
import type { GroupWriter, PushItem, PushOutcome } from "./pushWriter.ts";

export interface DrainDeps {
  readonly outbox: Context.Tag.Service<PushOutbox>;
  readonly policy: Context.Tag.Service<RetryPolicy>;
  /** The pull's settlement: a push the vendor refused for a moved version merges the remote record through it. */
  readonly pull: PullSettlementDeps;
}

/** Which entries a drain takes, and as whom. */
export interface DrainOptions {
  /** The drain job's id (a later attempt of the same job takes back what an earlier one left claimed). */
  readonly claimer: string;
  /** `"due"`: the entries due now (push jobs); `"all"`: every pending entry (a push asked for now). */
  readonly which: "due" | "all";
}

/** A drain's options, with what the entity's initial matching allows (see `matchBeforeFirstPush`). */
export interface DrainClaims extends DrainOptions {
  /**
   * Whether records created locally are created at the vendor by this drain: only once initial
   * matching is done. A drain that started before the entity's first local create would otherwise
   * take that create, and the matching run for it could link the record to its own copy, just
   * created. Left out, creates wait for the drain their submission queued, which matches first.
   */
  readonly creates: boolean;
}

/** What a drain did. */
export interface DrainResult {
  readonly created: number;
  readonly updated: number;
  readonly deleted: number;
  /** Entries that needed no write (nothing left to push, record gone or in an open conflict). */
  readonly unchanged: number;
  /** Writes that failed this time (retried later, or dead: see the record's status). */
  readonly errors: ReadonlyArray<SyncItemError>;
  /** When the entity's next pending entry comes due (null: none pending). */
  readonly nextDueAt: Date | null;
}

/** A drain claims at most this many times: a record edited without a pause would keep it forever. */
const MAX_CLAIMS = 20;

/** A claimed entry's write, or why it needs none. */
type Plan =
  | {
      readonly _tag: "Write";
      readonly claimed: ClaimedEntry;
      readonly operation: PushOperation;
      readonly item: PushItem;
    }
  | { readonly _tag: "Nothing"; readonly settlement: PushSettlement };

/**
 * The vendor's version of the record the local changes were made against: its `base` (the last
 * state both sides agreed on). Updates and deletes are written only if the vendor's record is
 * still at it: a delete must not take a remote edit it never saw with it (a refused one goes by the delete-against-edit rule, see `mergeMoved`).
 */
const baseVersion = (r: ResolvedEntity, record: PushRecord): string | undefined => {
  const { base } = record;
  // A whole stored record: the entity's compiled codec reads it in one walk. Field by field is
  // for a base the record schema no longer accepts as a whole (the connector changed since).
  const decoded = decodeRecord(r.entity, base);
  try {
    return versionOf(r.entity, Either.isRight(decoded) ? decoded.right.record : decodeFields(r.entity, base));
  } catch {
    // A base the entity cannot read a version from: the write cannot be conditional.
    return undefined;
  }
};

/**
 * What a claimed entry asks of the vendor, from its record as it is now (the entry says what
 * happened; the record says what is left to do): a record still provisional is created; a
 * deleted one deleted; otherwise its unpushed changes are sent.
 */
const plan = (r: ResolvedEntity, claimed: ClaimedEntry): Plan => {
  const { entry, record } = claimed;
  if (record === undefined || record.syncStatus === "conflict") {
    return { _tag: "Nothing", settlement: { _tag: "Nothing", entry } };
  }
  if (record.provisional) {
    // Deleted locally while its create was being written, and that create failed: nothing to do.
    if (record.deleted) {
      return { _tag: "Nothing", settlement: { _tag: "Nothing", entry, settleRecord: record } };
    }
    const item = {
      externalId: record.externalId,
      fields: writableOnly(r.entity, decodeFields(r.entity, record.data ?? record.base)),
    };
    return { _tag: "Write", claimed, operation: "create", item };
  }
  if (record.deleted) {
    if (record.syncStatus !== "pending") return { _tag: "Nothing", settlement: { _tag: "Nothing", entry } };
    const item = { externalId: record.externalId, fields: {}, ifVersion: baseVersion(r, record) };
    return { _tag: "Write", claimed, operation: "delete", item };
  }
  const changes = record.pendingChanges ?? {};
  if (Object.keys(changes).length === 0) return { _tag: "Nothing", settlement: { _tag: "Nothing", entry } };
  const item = {
    externalId: record.externalId,
    fields: decodeFields(r.entity, changes),
    ifVersion: baseVersion(r, record),
  };
  return { _tag: "Write", claimed, operation: "update", item };
};

/** The settlement of one written item: its outcome, the retry policy's decision on a failure. */
const settlementOf = (
  deps: DrainDeps,
  r: ResolvedEntity,
  write: Extract<Plan, { _tag: "Write" }>,
  outcome: PushOutcome,
  at: number,
  merged: ReadonlySet<string>,
): Effect.Effect<PushSettlement | "credentials refused"> =>
  Effect.gen(function* () {
    const { entry } = write.claimed;
    const record = write.claimed.record!;
    if (outcome._tag === "Written") {
      if (write.operation === "delete") {
        return { _tag: "Written", entry, record, operation: "delete", remote: undefined } as const;
      }
      if (outcome.remote !== undefined) {
        const remote = toIncoming(outcome.remote);
        return { _tag: "Written", entry, record, operation: write.operation, remote } as const;
      }
      if (outcome.recordError !== undefined) {
        // The vendor took the write but its answer cannot be read. Writing again could duplicate
        // the record: given up, for a person to look at.
        const error = `the vendor's answer does not match the schema: ${outcome.recordError}`;
        return { _tag: "Failed", entry, record, error, retryAt: undefined } as const;
      }
      if (write.operation === "create" && outcome.externalId !== undefined) {
        // Created, its record neither answered nor read back: it takes the vendor's id with the
        // data it was created with, and the next pull brings the vendor's copy.
        const remote = { externalId: outcome.externalId, data: record.data ?? record.base, remoteUpdatedAt: null };
        return { _tag: "Written", entry, record, operation: "create", remote } as const;
      }
      if (write.operation === "create") {
        const error = "the vendor took the create but answered no id";
        return { _tag: "Failed", entry, record, error, retryAt: undefined } as const;
      }
      return { _tag: "Written", entry, record, operation: write.operation, remote: undefined } as const;
    }
    const { error } = outcome;
    if (error._tag === "AuthExpired") return "credentials refused" as const;
    const message = `${error._tag}: ${error.message}`;
    if (merged.has(write.item.externalId)) {
      // The vendor's record moved since the change's base: it was read and merged three-way with
      // the local changes (the pull's settlement, the entity's conflict policy, audited in the
      // conflicts table), or for a delete settled by the delete-against-edit rule (audited too).
      // What is left to push goes again now, against the new base.
      const settled =
        write.operation === "delete"
          ? "settled by the delete-against-edit rule"
          : "merged with the vendor's record; the merge is pushed next";
      const error = `${message} (${settled})`;
      return { _tag: "Failed", entry, record, error, retryAt: new Date(at) } as const;
    }
    if (error._tag === "EntityNotSupported")
      return { _tag: "Failed", entry, record, error: message, retryAt: undefined };
    const decision = yield* deps.policy.decide({
      failure: {
        // A moved version whose vendor record could not be read for the merge (yet): retried
        // like an unavailable vendor, the merge tried again then, never given up as a refusal.
        tag: isVersionConflict(error) ? "Unavailable" : error._tag,
        message: error.message,
        retryAfterMs: "retryAfterMs" in error ? error.retryAfterMs : undefined,
      },
      attempt: entry.attempts + 1,
      maxAttempts: deps.policy.maxAttemptsFor(r.connector.name),
      credentialsRefreshed: false,
    });
    const retryAt =
      decision._tag === "Retry" || decision._tag === "RetryUncounted" ? new Date(at + decision.delayMs) : undefined;
    return { _tag: "Failed", entry, record, error: message, retryAt } as const;
  });

/**
 * The items the vendor refused for a moved version (its own conditional write, or the engine's
 * comparison): their vendor records are read and settled against the local changes as a pull
 * would (three-way against the base; overlapping fields through the entity's conflict policy,
 * recorded in the conflicts table; a local delete by the delete-against-edit rule: edit-wins
 * restores the record as the vendor has it, delete-wins pushes the delete again against the
 * version it was weighed against), never overwritten. Answers the ids merged.
 */
const mergeMoved = (
  deps: DrainDeps,
  r: ResolvedEntity,
  settings: PushSettings,
  group: ReadonlyArray<Extract<Plan, { _tag: "Write" }>>,
  outcomes: ReadonlyArray<PushOutcome>,
): Effect.Effect<ReadonlySet<string>> =>
  Effect.gen(function* () {
    const moved = group.flatMap((p, i) => {
      const o = outcomes[i]!;
      return o._tag === "Failed" && isVersionConflict(o.error) ? [p.item.externalId] : [];
    });
    if (moved.length === 0) return new Set<string>();
    const fetched = yield* fetchAndStore(deps.pull, r, moved, settings.concurrency).pipe(Effect.either);
    if (fetched._tag === "Left") return new Set<string>();
    const failed = new Set(fetched.right.errors.map((e) => e.externalId));
    return new Set(moved.filter((id) => !failed.has(id)));
  });

const itemError = (s: Extract<PushSettlement, { _tag: "Failed" }>): SyncItemError => {
  const colon = s.error.indexOf(": ");
  return {
    externalId: s.record.externalId,
    type: colon > 0 ? s.error.slice(0, colon) : "InvalidRecord",
    message: colon > 0 ? s.error.slice(colon + 2) : s.error,
  };
};

/** What one claimed batch came to: tallied into the drain's result. */
interface BatchTally {
  readonly counts: Record<"create" | "update" | "delete" | "unchanged", number>;
  readonly errors: Array<SyncItemError>;
  /** The vendor refused the credentials: these entries were handed back. */
  refused: boolean;
}

/**
 * One claimed batch: planned from its records, written in groups per operation, settled. Entries
 * whose write met refused credentials are handed back untouched (`tally.refused`).
 */
const writeClaimed = (
  deps: DrainDeps,
  r: ResolvedEntity,
  settings: PushSettings,
  writer: GroupWriter,
  claimer: string,
  claimed: ReadonlyArray<ClaimedEntry>,
  tally: BatchTally,
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const plans = claimed.map((c) => plan(r, c));
    const settlements: Array<PushSettlement> = [];
    const refused: Array<string> = [];
    for (const p of plans) if (p._tag === "Nothing") settlements.push(p.settlement);
    for (const operation of ["create", "update", "delete"] as const) {
      const group = plans.filter(
        (p): p is Extract<Plan, { _tag: "Write" }> => p._tag === "Write" && p.operation === operation,
      );
      if (group.length === 0) continue;
      const outcomes = yield* writer(
        r,
        operation,
        group.map((p) => p.item),
      );
      const merged = yield* mergeMoved(deps, r, settings, group, outcomes);
      const at = yield* Clock.currentTimeMillis;
      for (let i = 0; i < group.length; i++) {
        const settled = yield* settlementOf(deps, r, group[i]!, outcomes[i]!, at, merged);
        if (settled === "credentials refused") refused.push(group[i]!.claimed.entry.id);
        else settlements.push(settled);
      }
    }
    yield* deps.outbox.settleMany(r.scope, settlements, settings.concurrency);
    for (const s of settlements) {
      if (s._tag === "Written") tally.counts[s.operation]++;
      else if (s._tag === "Nothing") tally.counts.unchanged++;
      else tally.errors.push(itemError(s));
    }
    if (refused.length > 0) {
      yield* deps.outbox.release(refused, claimer);
      tally.refused = true;
    }
  });

/**
 * Drains an entity's outbox: claims entries (critical first), plans each from its record, writes
 * them in groups per operation through `writer`, and settles each entry with its record: pushed
 * (the vendor's answer becomes data and base; a create takes the vendor's id), retried later by
 * the retry policy (`pending` with the error), or dead (`failed`). Repeats while there is
 * something to claim; each entry is written at most once per drain (a failed one waits for its
 * retry time), except that one changed while its write was in flight goes again.
 *
 * Up to `batchesInFlight` claimed batches are in flight at once, each claimed, written and
 * settled on its own: the next batch is claimed while one is written, and one settles while the
 * next is written, so the database's round trips overlap the vendor's. A claim never takes an
 * entry of a batch still in flight. The vendor's rate budget still paces every request (the
 * connection's HTTP client).
 *
 * Credentials the vendor refuses fail the drain with AuthExpired, the claimed entries handed back
 * untouched, for the job queue to refresh them and run it again.
 */
export const drainOutbox = (
  deps: DrainDeps,
  r: ResolvedEntity,
  settings: PushSettings,
  writer: GroupWriter,
  options: DrainClaims,
): Effect.Effect<DrainResult, AuthExpired> =>
  Effect.gen(function* () {
    const { outbox } = deps;
    // Claims, and the reads of their records, are planned from statistics that know how many
    // there are: a bulk of local changes, or a first import, may have just grown them.
    yield* refreshPlannerStatistics(deps.pull.db);
    const startedAt = new Date(yield* Clock.currentTimeMillis);
    const tally: BatchTally = { counts: { create: 0, update: 0, delete: 0, unchanged: 0 }, errors: [], refused: false };
    const lanes = Math.max(1, settings.batchesInFlight);
    const free = yield* Effect.makeSemaphore(lanes);
    /** Claimed batches not yet settled. */
    let inFlight = 0;
    const batches: Array<Fiber.RuntimeFiber<void>> = [];
    /** Waits until no batch is in flight. */
    const settled = free.withPermits(lanes)(Effect.void);
    let claims = 0;
    while (claims < MAX_CLAIMS && !tally.refused) {
      yield* free.take(1);
      const claimed = yield* outbox.claim(r.scope, {
        claimer: options.claimer,
        limit: settings.batchSize,
        leaseMs: settings.claimLeaseMs,
        which: options.which,
        drainStartedAt: startedAt,
        creates: options.creates,
      });
      if (claimed.length === 0) {
        yield* free.release(1);
        if (inFlight === 0) break;
        // What is in flight may hand entries back (changed while they were written): claim again
        // once it has settled; nothing then means the drain is done.
        yield* settled;
        continue;
      }
      claims++;
      inFlight++;
      const batch = writeClaimed(deps, r, settings, writer, options.claimer, claimed, tally).pipe(
        Effect.ensuring(
          Effect.zipRight(
            Effect.sync(() => {
              inFlight--;
            }),
            free.release(1),
          ),
        ),
      );
      batches.push(yield* Effect.fork(batch));
    }
    yield* Fiber.joinAll(batches);
    if (tally.refused) {
      return yield* new AuthExpired({ message: "the vendor refused the connection's credentials during a push" });
    }
    return {
      created: tally.counts.create,
      updated: tally.counts.update,
      deleted: tally.counts.delete,
      unchanged: tally.counts.unchanged,
      errors: tally.errors,
      nextDueAt: yield* outbox.nextDue(r.scope),
    };
  });
