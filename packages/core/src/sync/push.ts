import { callConnector, decodeRecord } from "@tandem/connector-sdk/runtime";
import { Effect, Either, Option } from "effect";
import { ResourceNotFound } from "../errors/Errors.ts";
import type { RecordStoreService, StoredRecord } from "../store/RecordStore.ts";
import { toIncoming } from "./PullSettlement.ts";
import { type ResolvedEntity, unsupported } from "./ResolvedEntity.ts";
import type { SyncItemError } from "./SyncJob.ts";
import type { LocalChangeResult, SyncRunOptions } from "./SyncRun.ts";

/** Transient reasons keep a push pending (retried); the rest fail it for good. */
const permanentPushErrors = new Set(["InvalidRecord", "NotFound", "Conflict", "EntityNotSupported"]);

/** Pushes one pending record through `write.update`; a failure marks the record (pending or failed). */
const pushOne = (store: RecordStoreService, r: ResolvedEntity, record: StoredRecord) =>
  Effect.gen(function* () {
    const update = r.entity.write?.update;
    if (update === undefined) return yield* unsupported(r, "the entity has no write.update");
    const remote = yield* callConnector(() => update(r.ctx, record.externalId, record.pendingChanges ?? {}));
    const decoded = decodeRecord(r.entity, remote);
    if (Either.isLeft(decoded)) return yield* decoded.left;
    yield* store.markPushed(r.scope, record.externalId, record.version, toIncoming(decoded.right));
    return "synced" as const;
  }).pipe(
    Effect.catchAll((e) =>
      store
        .markPushFailed(r.scope, record.externalId, record.version, {
          permanent: permanentPushErrors.has(e._tag),
          message: `${e._tag}: ${e.message}`,
        })
        .pipe(Effect.as({ externalId: record.externalId, type: e._tag, message: e.message } as SyncItemError)),
    ),
  );

/** Push: writes a batch of pending local changes through the connector, concurrently. */
export const push = (store: RecordStoreService, r: ResolvedEntity, options: SyncRunOptions) =>
  Effect.gen(function* () {
    if (r.entity.write?.update === undefined) return yield* unsupported(r, "the entity has no write.update");
    const pending = yield* store.pending(r.scope, { limit: options.batchSize ?? 500 });
    const outcomes = yield* Effect.forEach(pending, (rec) => pushOne(store, r, rec), {
      concurrency: options.concurrency ?? 4,
    });
    const errors = outcomes.filter((o): o is SyncItemError => o !== "synced");
    return {
      created: 0,
      updated: outcomes.length - errors.length,
      unchanged: 0,
      deleted: 0,
      errors,
      pages: 1,
      resumed: false,
    };
  });

/**
 * A local change (hybrid): stored as pending, and pushed at once when it touches one of the
 * entity's `criticalFields`; otherwise the next push run sends it.
 */
export const applyLocalChange = (
  store: RecordStoreService,
  r: ResolvedEntity,
  externalId: string,
  changes: Record<string, unknown>,
) =>
  Effect.gen(function* () {
    const stored = yield* store.applyLocalChange(r.scope, externalId, changes);
    if (Option.isNone(stored)) {
      return yield* new ResourceNotFound({ resource: "record", id: externalId });
    }
    const critical = r.entity.criticalFields ?? [];
    if (!Object.keys(changes).some((k) => critical.includes(k))) {
      return { record: stored.value, pushedNow: false } satisfies LocalChangeResult;
    }
    yield* pushOne(store, r, stored.value);
    const after = yield* store.get(r.scope, externalId);
    return { record: Option.getOrElse(after, () => stored.value), pushedNow: true } satisfies LocalChangeResult;
  });
