import { randomUUID } from "node:crypto";
import { Effect } from "effect";
import { sql } from "kysely";
import { PreconditionFailed, ResourceNotFound } from "../../errors/Errors.ts";
import * as queueRows from "../QuarantineRows.ts";
import { inScope, softDeleteWhere } from "../RecordRows.ts";
import type { RecordScope } from "../RecordStore.ts";
import type { GuardDeps } from "./GuardDeps.ts";
import { type QuarantinedDeletionView, toView } from "./quarantineViews.ts";

/** One connection x entity of a tenant, as an operator names it. */
export interface QueueScope {
  readonly connectionId: string;
  readonly entity: string;
}

/**
 * Deletes the live records of `scope` whose queued deletion `settlementId` approved: the records'
 * own soft delete (a new change-feed position each, `deleted_at` set), one statement.
 */
const deleteApproved = (deps: GuardDeps, scope: RecordScope, settlementId: string, at: string) =>
  deps.query((k) =>
    softDeleteWhere(k, sql`${inScope(scope)} and deleted_at is null and ${queueRows.approvedBy(settlementId)}`, at),
  );

/** The row named, pending; NotFound when it is not the tenant's, PreconditionFailed when already settled. */
const notPending = (
  deps: GuardDeps,
  tenantId: string,
  id: string,
): Effect.Effect<never, ResourceNotFound | PreconditionFailed> =>
  Effect.flatMap(
    deps.query((k) => queueRows.findRow(k, tenantId, id)),
    (row): Effect.Effect<never, ResourceNotFound | PreconditionFailed> =>
      row === undefined
        ? Effect.fail(new ResourceNotFound({ resource: "quarantined deletion", id }))
        : Effect.fail(new PreconditionFailed({ message: `quarantined deletion ${id} is already ${row.status}` })),
  );

/**
 * Approves one queued deletion: the record is soft-deleted through the store (change feed
 * included) and the row records who approved it. The row is settled first and the record
 * deleted by the settlement's tag in the same transaction: a sync seeing the record live at the
 * same moment either releases the row first (the record stays) or waits for this to commit.
 */
export const approveOne = (deps: GuardDeps, tenantId: string, id: string, actor: string) =>
  Effect.gen(function* () {
    const settlementId = randomUUID();
    const iso = (yield* deps.now).toISOString();
    const decision = { status: "approved", by: actor, reason: null, settlementId } as const;
    const { row, deleted } = yield* deps.db.transaction(
      Effect.gen(function* () {
        const row = yield* deps.query((k) => queueRows.decideOne(k, iso, tenantId, id, decision));
        if (row === undefined) return yield* notPending(deps, tenantId, id);
        const scope = { tenantId, connectionId: row.connection_id, entity: row.entity };
        return { row, deleted: yield* deleteApproved(deps, scope, settlementId, iso) };
      }),
    );
    yield* deps.notify(tenantId);
    return { ...toView(row), recordDeleted: deleted > 0 } satisfies QuarantinedDeletionView & {
      readonly recordDeleted: boolean;
    };
  });

/** Rejects one queued deletion: the record stays live, kept until it is seen live remotely again. */
export const rejectOne = (deps: GuardDeps, tenantId: string, id: string, actor: string, reason: string | null) =>
  Effect.gen(function* () {
    const iso = (yield* deps.now).toISOString();
    const decision = { status: "rejected", by: actor, reason, settlementId: randomUUID() } as const;
    const row = yield* deps.query((k) => queueRows.decideOne(k, iso, tenantId, id, decision));
    if (row === undefined) return yield* notPending(deps, tenantId, id);
    yield* deps.notify(tenantId);
    return toView(row);
  });

/** Fails with ResourceNotFound unless the connection is the tenant's. */
const ownConnection = (deps: GuardDeps, tenantId: string, connectionId: string) =>
  Effect.flatMap(
    deps.query((k) =>
      k
        .selectFrom("connections")
        .select("id")
        .where("tenant_id", "=", tenantId)
        .where("id", "=", connectionId)
        .executeTakeFirst(),
    ),
    (row) =>
      row === undefined ? Effect.fail(new ResourceNotFound({ resource: "connection", id: connectionId })) : Effect.void,
  );

/** Approves every queued deletion of a connection x entity, in one transaction. */
export const approveAll = (deps: GuardDeps, tenantId: string, scope: QueueScope, actor: string) =>
  Effect.gen(function* () {
    yield* ownConnection(deps, tenantId, scope.connectionId);
    const settlementId = randomUUID();
    const iso = (yield* deps.now).toISOString();
    const decision = { status: "approved", by: actor, reason: null, settlementId } as const;
    const result = yield* deps.db.transaction(
      Effect.gen(function* () {
        const approved = yield* deps.query((k) => queueRows.decideAll(k, iso, tenantId, scope, decision));
        const deleted = approved === 0 ? 0 : yield* deleteApproved(deps, { tenantId, ...scope }, settlementId, iso);
        return { approved, deleted };
      }),
    );
    yield* deps.notify(tenantId);
    return result;
  });

/** Rejects every queued deletion of a connection x entity: the records stay live. */
export const rejectAll = (deps: GuardDeps, tenantId: string, scope: QueueScope, actor: string, reason: string | null) =>
  Effect.gen(function* () {
    yield* ownConnection(deps, tenantId, scope.connectionId);
    const iso = (yield* deps.now).toISOString();
    const decision = { status: "rejected", by: actor, reason, settlementId: randomUUID() } as const;
    const rejected = yield* deps.query((k) => queueRows.decideAll(k, iso, tenantId, scope, decision));
    yield* deps.notify(tenantId);
    return { rejected };
  });
