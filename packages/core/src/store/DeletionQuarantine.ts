import { Clock, Context, Effect, Layer } from "effect";
import { Database } from "../db/Database.ts";
import type { QuarantineStatus } from "../db/schema.ts";
import { pageLimit, seqPage } from "../db/seqPage.ts";
import { type PreconditionFailed, ResourceNotFound } from "../errors/Errors.ts";
import { requestAlertEvaluation } from "../ops/alerts/evaluationJob.ts";
import { JobQueue } from "../queue/JobQueue.ts";
import * as queueRows from "./QuarantineRows.ts";
import { approveAll, approveOne, type QueueScope, rejectAll, rejectOne } from "./quarantine/decideDeletions.ts";
import type { GuardDeps } from "./quarantine/GuardDeps.ts";
import { type GuardDeletesOptions, type GuardOutcome, guardDeletes } from "./quarantine/guardDeletes.ts";
import { DEFAULT_GUARD_LIMITS, type DeletionGuardLimits } from "./quarantine/guardRules.ts";
import { guardVanished, type VanishedInput, type VanishedOutcome } from "./quarantine/guardVanished.ts";
import { type QuarantinedDeletionView, toView } from "./quarantine/quarantineViews.ts";
import type { RecordScope } from "./RecordStore.ts";

export type { GuardDeletesOptions, GuardOutcome } from "./quarantine/guardDeletes.ts";
export { DEFAULT_GUARD_LIMITS, type DeletionGuardLimits } from "./quarantine/guardRules.ts";
export type { VanishedInput, VanishedOutcome } from "./quarantine/guardVanished.ts";
export type { QuarantinedDeletionView } from "./quarantine/quarantineViews.ts";
export type { QueueScope };

/** The guard's thresholds for the whole engine; each field defaults to `DEFAULT_GUARD_LIMITS`. */
export class DeletionGuardConfig extends Context.Reference<DeletionGuardConfig>()("@tandem/core/DeletionGuardConfig", {
  defaultValue: (): Partial<DeletionGuardLimits> => ({}),
}) {}

/** Which queued deletions `list` returns: oldest first, keyset-paginated by `cursor`. */
export interface QuarantineListFilter {
  readonly status?: QuarantineStatus | undefined;
  readonly connectionId?: string | undefined;
  readonly entity?: string | undefined;
  readonly cursor?: string | undefined;
  /** 1-500, default 50. */
  readonly limit?: number | undefined;
}

/** The guard (for the sync strategies) and the review queue (for operators); see DeletionQuarantine. */
export interface DeletionQuarantineService {
  /**
   * Deletions a delta page or a webhook reported: applied, or held for review when they make a
   * burst (more than `maxDeletions` within `windowMinutes`) or while the entity has deletions
   * waiting for review. Rejected records are kept.
   */
  readonly guardDeletes: (
    scope: RecordScope,
    externalIds: ReadonlyArray<string>,
    options: GuardDeletesOptions,
  ) => Effect.Effect<GuardOutcome>;
  /** Reconciliation's vanished records (staged by run `runId`): deleted, or held by the share rule. */
  readonly guardVanished: (scope: RecordScope, runId: string, input: VanishedInput) => Effect.Effect<VanishedOutcome>;
  /** Whether the scope has pending deletions or kept records (a sync then releases what it sees live). */
  readonly hasOpenRows: (scope: RecordScope) => Effect.Effect<boolean>;
  /** Records seen live remotely: their pending deletions leave the queue (`reappeared`). Answers how many. */
  readonly releaseSeen: (scope: RecordScope, externalIds: ReadonlyArray<string>) => Effect.Effect<number>;
  /** Records reconciliation run `runId` staged (the remote lists them): as `releaseSeen`. */
  readonly releaseStaged: (scope: RecordScope, runId: string) => Effect.Effect<number>;

  /** The tenant's queued deletions (every status unless filtered), oldest first. */
  readonly list: (
    tenantId: string,
    filter?: QuarantineListFilter,
  ) => Effect.Effect<{ readonly items: ReadonlyArray<QuarantinedDeletionView>; readonly nextCursor: string | null }>;
  readonly get: (tenantId: string, id: string) => Effect.Effect<QuarantinedDeletionView, ResourceNotFound>;
  /** Applies one pending deletion (soft delete through the store: change feed included). */
  readonly approve: (
    tenantId: string,
    id: string,
    actor: string,
  ) => Effect.Effect<
    QuarantinedDeletionView & { readonly recordDeleted: boolean },
    ResourceNotFound | PreconditionFailed
  >;
  /** Drops one pending deletion and keeps the record (until it is seen live remotely again). */
  readonly reject: (
    tenantId: string,
    id: string,
    actor: string,
    reason?: string,
  ) => Effect.Effect<QuarantinedDeletionView, ResourceNotFound | PreconditionFailed>;
  /** Applies every pending deletion of a connection x entity. */
  readonly approveAll: (
    tenantId: string,
    scope: QueueScope,
    actor: string,
  ) => Effect.Effect<{ readonly approved: number; readonly deleted: number }, ResourceNotFound>;
  /** Drops every pending deletion of a connection x entity, keeping the records. */
  readonly rejectAll: (
    tenantId: string,
    scope: QueueScope,
    actor: string,
    reason?: string,
  ) => Effect.Effect<{ readonly rejected: number }, ResourceNotFound>;
}

/**
 * The mass-deletion guard and its review queue (`quarantined_deletions`, owned by
 * QuarantineRows). Every path that deletes records on a remote's word goes through the guard:
 * reconciliation (`guardVanished`: the share rule), a delta's tombstones and webhooks
 * (`guardDeletes`: a count within a window). Held deletions wait in the queue with their records
 * left live; the `mass_deletion` alert fires while a connection x entity has some (evaluated at
 * once when they are queued or settled); an operator approves (the deletion is applied) or
 * rejects (the record is kept) them one by one or all at once; a record seen live remotely
 * again (a later delta, webhook or reconciliation) leaves the queue by itself.
 */
export class DeletionQuarantine extends Context.Tag("@tandem/core/DeletionQuarantine")<
  DeletionQuarantine,
  DeletionQuarantineService
>() {
  /** Needs Database and JobQueue (the alert evaluation it asks for); configured by `DeletionGuardConfig`. */
  static readonly layerNoDeps = Layer.effect(
    DeletionQuarantine,
    Effect.suspend(() => makeDeletionQuarantine),
  );

  /** Needs Database and the queue's roots (RetryPolicy). */
  static readonly layer = DeletionQuarantine.layerNoDeps.pipe(Layer.provide(JobQueue.layer));
}

const makeDeletionQuarantine = Effect.gen(function* () {
  const db = yield* Database;
  const queue = yield* JobQueue;
  const config = yield* DeletionGuardConfig;
  const deps: GuardDeps = {
    db,
    query: (statements) => db.query(statements).pipe(Effect.orDie),
    now: Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms)),
    limits: { ...DEFAULT_GUARD_LIMITS, ...config },
    notify: (tenantId) => requestAlertEvaluation(queue, tenantId),
  };
  const at = Effect.map(deps.now, (d) => d.toISOString());
  return {
    guardDeletes: Effect.fn("DeletionQuarantine.guardDeletes")((scope, ids, options) =>
      guardDeletes(deps, scope, ids, options),
    ),
    guardVanished: Effect.fn("DeletionQuarantine.guardVanished")((scope, runId, input) =>
      guardVanished(deps, scope, runId, input),
    ),
    hasOpenRows: Effect.fn("DeletionQuarantine.hasOpenRows")((scope) =>
      deps.query((k) => queueRows.hasOpenRows(k, scope)),
    ),
    releaseSeen: Effect.fn("DeletionQuarantine.releaseSeen")(function* (scope, ids) {
      const iso = yield* at;
      const released = yield* deps.query((k) => queueRows.releaseSeen(k, iso, scope, ids));
      if (released > 0) yield* deps.notify(scope.tenantId);
      return released;
    }),
    releaseStaged: Effect.fn("DeletionQuarantine.releaseStaged")(function* (scope, runId) {
      const iso = yield* at;
      const released = yield* deps.query((k) => queueRows.releaseStaged(k, iso, scope, runId));
      if (released > 0) yield* deps.notify(scope.tenantId);
      return released;
    }),
    list: Effect.fn("DeletionQuarantine.list")(function* (tenantId, filter = {}) {
      const limit = pageLimit(filter.limit);
      const rows = yield* deps.query((k) => queueRows.listRows(k, tenantId, filter, limit));
      return seqPage(rows, limit, toView);
    }),
    get: Effect.fn("DeletionQuarantine.get")(function* (tenantId, id) {
      const row = yield* deps.query((k) => queueRows.findRow(k, tenantId, id));
      if (row === undefined) return yield* new ResourceNotFound({ resource: "quarantined deletion", id });
      return toView(row);
    }),
    approve: Effect.fn("DeletionQuarantine.approve")((tenantId, id, actor) => approveOne(deps, tenantId, id, actor)),
    reject: Effect.fn("DeletionQuarantine.reject")((tenantId, id, actor, reason) =>
      rejectOne(deps, tenantId, id, actor, reason ?? null),
    ),
    approveAll: Effect.fn("DeletionQuarantine.approveAll")((tenantId, scope, actor) =>
      approveAll(deps, tenantId, scope, actor),
    ),
    rejectAll: Effect.fn("DeletionQuarantine.rejectAll")((tenantId, scope, actor, reason) =>
      rejectAll(deps, tenantId, scope, actor, reason ?? null),
    ),
  } satisfies DeletionQuarantineService;
});
