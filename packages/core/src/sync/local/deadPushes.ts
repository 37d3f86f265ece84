import { Clock, type Context, Effect } from "effect";
import type { Database } from "../../db/Database.ts";
import type { PushOperation } from "../../db/schema.ts";
import type { ResourceNotFound } from "../../errors/Errors.ts";
import type { OutboxEntry, PushOutbox } from "../../store/PushOutbox.ts";
import { type RecordView, toRecordView } from "../../store/RecordView.ts";
import type { Connections } from "../../tenancy/Connections.ts";
import { type DrainSchedulingDeps, ensureDrain } from "../push/pushDrainJob.ts";

/** A dead push as the API lists it. */
export interface DeadPushView {
  readonly id: string;
  readonly connectionId: string;
  readonly entity: string;
  /** The vendor's id; null for a record whose create never reached it. */
  readonly externalId: string | null;
  readonly operation: PushOperation;
  readonly attempts: number;
  readonly error: string | null;
  readonly failedAt: string | null;
  readonly firstChangeAt: string;
  readonly lastChangeAt: string;
}

/** Which dead pushes to list; `limit` is kept between 1 and 500 (default 100). */
export interface DeadPushFilter {
  readonly connectionId?: string | undefined;
  readonly entity?: string | undefined;
  readonly limit?: number;
}

const toDeadView = (e: OutboxEntry): DeadPushView => ({
  id: e.id,
  connectionId: e.connectionId,
  entity: e.entity,
  // A create that never reached the vendor has no id of the vendor's yet.
  externalId: e.operation === "create" ? null : e.externalId,
  operation: e.operation,
  attempts: e.attempts,
  error: e.lastError,
  failedAt: e.lastAttemptAt === null ? null : e.lastAttemptAt.toISOString(),
  firstChangeAt: e.firstChangeAt.toISOString(),
  lastChangeAt: e.lastChangeAt.toISOString(),
});

/** The tenant's dead pushes, most recently failed first. */
export const listDeadPushes = (
  outbox: Context.Tag.Service<PushOutbox>,
  tenantId: string,
  filter: DeadPushFilter = {},
): Effect.Effect<ReadonlyArray<DeadPushView>> =>
  outbox
    .dead(tenantId, {
      connectionId: filter.connectionId,
      entity: filter.entity,
      limit: Math.max(1, Math.min(filter.limit ?? 100, 500)),
    })
    .pipe(Effect.map((entries) => entries.map(toDeadView)));

export interface RetryDeadPushDeps extends DrainSchedulingDeps {
  readonly db: Context.Tag.Service<Database>;
  readonly connections: Context.Tag.Service<Connections>;
  readonly outbox: Context.Tag.Service<PushOutbox>;
}

/** Sends a dead push back to be pushed now, with a fresh set of attempts: revived and its drain queued, in one transaction. */
export const retryDeadPush = (
  deps: RetryDeadPushDeps,
  tenantId: string,
  id: string,
): Effect.Effect<DeadPushView, ResourceNotFound> =>
  deps.db.transaction(
    Effect.gen(function* () {
      const entry = yield* deps.outbox.revive(tenantId, id);
      const scope = { tenantId, connectionId: entry.connectionId, entity: entry.entity };
      const { connector } = yield* deps.connections.resolve(tenantId, entry.connectionId).pipe(Effect.orDie);
      const now = new Date(yield* Clock.currentTimeMillis);
      yield* ensureDrain(deps, scope, connector.name, now, entry.critical);
      return { ...toDeadView(entry), attempts: 0 };
    }),
  );

/** Drops a dead push; its record goes back to the last state both sides agreed on. */
export const discardDeadPush = (
  outbox: Context.Tag.Service<PushOutbox>,
  tenantId: string,
  id: string,
): Effect.Effect<{ readonly id: string; readonly record: RecordView | null }, ResourceNotFound> =>
  outbox
    .discard(tenantId, id)
    .pipe(Effect.map(({ record }) => ({ id, record: record === undefined ? null : toRecordView(record) })));
