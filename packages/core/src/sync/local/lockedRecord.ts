import { type Context, Effect, Option } from "effect";
import { InvalidInput, PreconditionFailed, ResourceNotFound } from "../../errors/Errors.ts";
import { LockHeld, LockLost, type Locks, recordLockKey } from "../../queue/Locks.ts";
import type { RecordScope, RecordStore, StoredRecord } from "../../store/RecordStore.ts";
import type { ChangeTarget, LocalChangeError } from "./changeTarget.ts";

/** A record by either of its ids: the vendor's (`externalId`) or the host application's (`localId`). */
export interface RecordRef {
  readonly externalId?: string | undefined;
  readonly localId?: string | undefined;
}

export interface LockedRecordDeps {
  readonly store: Context.Tag.Service<RecordStore>;
  readonly locks: Context.Tag.Service<Locks>;
}

const notFound = (scope: RecordScope, ref: RecordRef) =>
  new ResourceNotFound({
    resource: "record",
    id: `${scope.entity}/${ref.localId !== undefined ? `localId ${ref.localId}` : ref.externalId!}`,
  });

/** The record a ref names (deleted or not); ResourceNotFound when there is none, InvalidInput unless exactly one id is given. */
export const findRecord = (
  store: Context.Tag.Service<RecordStore>,
  scope: RecordScope,
  ref: RecordRef,
): Effect.Effect<StoredRecord, ResourceNotFound | InvalidInput> =>
  Effect.gen(function* () {
    if ((ref.externalId === undefined) === (ref.localId === undefined)) {
      return yield* new InvalidInput({
        issues: [{ path: "externalId", message: "name the record by exactly one of externalId and localId" }],
      });
    }
    const found =
      ref.localId !== undefined
        ? yield* store.getByLocalId(scope, ref.localId)
        : // A provisional id is ours, never shown: a record not yet at the vendor is found by its localId.
          Option.filter(yield* store.get(scope, ref.externalId!), (r) => !r.provisional);
    if (Option.isNone(found)) return yield* notFound(scope, ref);
    return found.value;
  });

/**
 * Runs `change` on the record `ref` names, under its lock (a pull of the record never
 * interleaves). The record's external id can change between lookup and write (a pushed create
 * takes the vendor's id): `change` answers none then, and the record is looked up again.
 */
export const changeLockedRecord = <A, E>(
  deps: LockedRecordDeps,
  target: ChangeTarget,
  ref: RecordRef,
  change: (record: StoredRecord) => Effect.Effect<Option.Option<A>, E>,
): Effect.Effect<A, E | LocalChangeError> =>
  Effect.gen(function* () {
    const { scope } = target;
    for (let attempt = 0; attempt < 3; attempt++) {
      const record = yield* findRecord(deps.store, scope, ref);
      const key = recordLockKey(scope.connectionId, scope.entity, record.externalId);
      const done = yield* deps.locks
        .withLock(key, { waitMs: 5_000 }, () => change(record))
        .pipe(
          Effect.mapError((e): E | PreconditionFailed =>
            e instanceof LockHeld || e instanceof LockLost
              ? new PreconditionFailed({ message: `record ${record.externalId} is being synced; retry shortly` })
              : (e as E),
          ),
        );
      if (Option.isSome(done)) return done.value;
      // Only a localId outlives the create's change of external id.
      if (ref.localId === undefined) break;
    }
    return yield* notFound(scope, ref);
  });
