import { Clock, Context, Effect, Layer, type Option } from "effect";
import { Database } from "../db/Database.ts";
import { type AlreadyExists, ResourceNotFound } from "../errors/Errors.ts";
import { holdLocalRecord, linkLocalRecord } from "./outbox/initialMatch.ts";
import {
  type AppliedChange,
  type ChangeTiming,
  createLocalRecord,
  deleteLocalRecord,
  editLocalRecord,
} from "./outbox/localChanges.ts";
import { type PushSettlement, settlePush, settlePushes } from "./outbox/pushSettlement.ts";
import type { ClaimedEntry, OutboxEntry } from "./PushOutboxRows.ts";
import * as outbox from "./PushOutboxRows.ts";
import * as rows from "./RecordRows.ts";
import type { RecordScope, StoredRecord } from "./RecordStore.ts";

export type { AppliedChange, ChangeTiming } from "./outbox/localChanges.ts";
export type { PushSettlement } from "./outbox/pushSettlement.ts";
export type { ClaimedEntry, ClaimedOutboxEntry, OutboxEntry } from "./PushOutboxRows.ts";
export type { PushRecord } from "./RecordRows.ts";

/** What a drain claims (see `PushOutboxService.claim`). */
export interface ClaimInput {
  /** The drain job's id. */
  readonly claimer: string;
  readonly limit: number;
  /** How long the claim holds if the drain dies. */
  readonly leaseMs: number;
  /** `"due"`: entries due now; `"all"`: every pending entry (a push asked for now). */
  readonly which: "due" | "all";
  /**
   * When this drain started: entries it already attempted are left for the next one, and entries
   * it claimed (in flight) are not claimed again; an earlier attempt's claims are taken back.
   */
  readonly drainStartedAt: Date;
  /**
   * Whether entries that create records are claimed: only once the entity's initial matching is
   * done (see sync/matching/initialMatch.ts); until then they wait for a drain that runs it.
   */
  readonly creates: boolean;
}

/** The push outbox's operations; see PushOutbox. */
export interface PushOutboxService {
  /** A record created locally (provisional external id), pending, with its entry. */
  readonly create: (
    scope: RecordScope,
    input: { readonly localId: string | null; readonly fields: Record<string, unknown> },
    timing: ChangeTiming,
  ) => Effect.Effect<AppliedChange, AlreadyExists>;
  /** A local edit with its entry; none when the record does not exist or is deleted. */
  readonly edit: (
    scope: RecordScope,
    externalId: string,
    changes: Record<string, unknown>,
    timing: ChangeTiming,
    pushes?: (field: string) => boolean,
    /** The vendor's record the change was made against, where it is not the stored base (see `editLocalRecord`). */
    base?: Record<string, unknown>,
  ) => Effect.Effect<Option.Option<AppliedChange>>;
  /** A local delete with its entry; none when the record does not exist or is already deleted. */
  readonly remove: (
    scope: RecordScope,
    externalId: string,
    timing: ChangeTiming,
  ) => Effect.Effect<Option.Option<AppliedChange>>;
  /** Claims pending entries of the scope for a drain, critical ones first, each with its record. */
  /** Whether the scope has a pending create (a local record not yet at the vendor). */
  readonly hasPendingCreate: (scope: RecordScope) => Effect.Effect<boolean>;
  /** Initial matching: a record created locally takes the vendor record's id; its create becomes an update. */
  readonly link: (
    scope: RecordScope,
    provisionalId: string,
    vendorId: string,
  ) => Effect.Effect<StoredRecord | undefined>;
  /** Initial matching: an ambiguous record created locally is held (failed, its entry dead) for an operator. */
  readonly hold: (scope: RecordScope, record: StoredRecord, error: string) => Effect.Effect<void>;
  readonly claim: (scope: RecordScope, input: ClaimInput) => Effect.Effect<ReadonlyArray<ClaimedEntry>>;
  /** Settles one claimed entry and its record (see `settlePush`). */
  readonly settle: (scope: RecordScope, settlement: PushSettlement) => Effect.Effect<void>;
  /** Settles many claimed entries (see `settlePushes`), `concurrency` of the single settlements at a time. */
  readonly settleMany: (
    scope: RecordScope,
    settlements: ReadonlyArray<PushSettlement>,
    concurrency: number,
  ) => Effect.Effect<void>;
  /** Hands claimed entries back untouched. */
  readonly release: (ids: ReadonlyArray<string>, claimer: string) => Effect.Effect<void>;
  /** When the scope's next pending entry comes due; none when there is none. */
  readonly nextDue: (scope: RecordScope) => Effect.Effect<Date | null>;
  /** Makes the scope's pending entries due now; answers how many there are. */
  readonly makeDueNow: (scope: RecordScope) => Effect.Effect<number>;
  /** The tenant's dead pushes, most recently failed first. */
  readonly dead: (
    tenantId: string,
    filter: {
      readonly connectionId?: string | undefined;
      readonly entity?: string | undefined;
      readonly limit: number;
    },
  ) => Effect.Effect<ReadonlyArray<OutboxEntry>>;
  /** Sends a dead push back to the drains, due now; answers the entry as it was. */
  readonly revive: (tenantId: string, id: string) => Effect.Effect<OutboxEntry, ResourceNotFound>;
  /**
   * Drops a dead push and abandons its record's unpushed changes: the record goes back to the last
   * state both sides agreed on (see `revertLocalChange`). Answers the record.
   */
  readonly discard: (
    tenantId: string,
    id: string,
  ) => Effect.Effect<{ readonly entry: OutboxEntry; readonly record: StoredRecord | undefined }, ResourceNotFound>;
}

/**
 * The push outbox (`push_outbox`): local changes written with their entry in one transaction,
 * claimed and settled by push drains, and the dead pushes an operator retries or discards.
 */
export class PushOutbox extends Context.Tag("@tandem/core/PushOutbox")<PushOutbox, PushOutboxService>() {
  /** Needs only the Database. */
  static readonly layerNoDeps = Layer.effect(
    PushOutbox,
    Effect.suspend(() => makePushOutbox),
  );

  /** Same as `layerNoDeps`: its one dependency, the Database, is a root of the engine. */
  static readonly layer = PushOutbox.layerNoDeps;
}

const makePushOutbox = Effect.gen(function* () {
  const db = yield* Database;
  const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms));
  const run = <A>(statements: Parameters<typeof db.query<A>>[0]) => db.query(statements).pipe(Effect.orDie);

  /** A dead entry of the tenant, locked for the rest of the transaction; ResourceNotFound otherwise. */
  const deadEntry = (tenantId: string, id: string) =>
    Effect.flatMap(
      run((k) => outbox.entryForUpdate(k, tenantId, id)),
      (entry) =>
        entry === undefined || entry.status !== "dead"
          ? Effect.fail(new ResourceNotFound({ resource: "dead push", id }))
          : Effect.succeed(entry),
    );
  const scopeOf = (entry: OutboxEntry): RecordScope => ({
    tenantId: entry.tenantId,
    connectionId: entry.connectionId,
    entity: entry.entity,
  });

  return PushOutbox.of({
    create: Effect.fn("PushOutbox.create")(function* (scope, input, timing) {
      return yield* createLocalRecord(db, scope, input, timing, yield* now);
    }),
    edit: Effect.fn("PushOutbox.edit")(function* (scope, externalId, changes, timing, pushes, base) {
      return yield* editLocalRecord(db, scope, externalId, changes, timing, yield* now, pushes, base);
    }),
    remove: Effect.fn("PushOutbox.remove")(function* (scope, externalId, timing) {
      return yield* deleteLocalRecord(db, scope, externalId, timing, yield* now);
    }),
    hasPendingCreate: Effect.fn("PushOutbox.hasPendingCreate")((scope) =>
      run((k) => outbox.hasPendingCreate(k, scope)),
    ),
    link: Effect.fn("PushOutbox.link")(function* (scope, provisionalId, vendorId) {
      return yield* linkLocalRecord(db, scope, provisionalId, vendorId, yield* now);
    }),
    hold: Effect.fn("PushOutbox.hold")(function* (scope, record, error) {
      return yield* holdLocalRecord(db, scope, record, error, yield* now);
    }),
    claim: Effect.fn("PushOutbox.claim")(function* (scope, input) {
      const at = yield* now;
      return yield* run((k) =>
        outbox.claimDue(k, scope, {
          claimer: input.claimer,
          now: at,
          until: new Date(at.getTime() + input.leaseMs),
          limit: input.limit,
          dueBy: input.which === "all" ? "all" : at,
          notAttemptedSince: input.drainStartedAt,
          reclaimBefore: new Date(input.drainStartedAt.getTime() + input.leaseMs),
          creates: input.creates,
        }),
      );
    }),
    settle: Effect.fn("PushOutbox.settle")(function* (scope, settlement) {
      return yield* settlePush(db, scope, settlement, yield* now);
    }),
    settleMany: Effect.fn("PushOutbox.settleMany")(function* (scope, settlements, concurrency) {
      return yield* settlePushes(db, scope, settlements, yield* now, concurrency);
    }),
    release: Effect.fn("PushOutbox.release")((ids, claimer) => run((k) => outbox.releaseClaims(k, ids, claimer))),
    nextDue: Effect.fn("PushOutbox.nextDue")(function* (scope) {
      const at = yield* now;
      return yield* run((k) => outbox.nextDue(k, scope, at));
    }),
    makeDueNow: Effect.fn("PushOutbox.makeDueNow")(function* (scope) {
      const at = yield* now;
      return yield* run((k) => outbox.makeDueBy(k, scope, at));
    }),
    dead: Effect.fn("PushOutbox.dead")((tenantId, filter) => run((k) => outbox.listDead(k, tenantId, filter))),
    revive: Effect.fn("PushOutbox.revive")(function* (tenantId, id) {
      const at = yield* now;
      return yield* db.transaction(
        Effect.gen(function* () {
          const entry = yield* deadEntry(tenantId, id);
          yield* run((k) => outbox.reviveDead(k, id, at));
          yield* run((k) => rows.markPushRetried(k, scopeOf(entry), entry.externalId));
          return entry;
        }),
      );
    }),
    discard: Effect.fn("PushOutbox.discard")(function* (tenantId, id) {
      const at = (yield* now).toISOString();
      return yield* db.transaction(
        Effect.gen(function* () {
          const entry = yield* deadEntry(tenantId, id);
          const record = yield* run((k) =>
            rows.revertLocalChange(k, at, scopeOf(entry), entry.externalId, { undelete: entry.operation === "delete" }),
          );
          yield* run((k) => outbox.deleteEntry(k, id));
          return { entry, record };
        }),
      );
    }),
  });
});
