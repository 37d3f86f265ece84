import { Effect, Option } from "effect";
import type { StoredRecord } from "../../store/RecordStore.ts";
import {
  type ChangeTargetDeps,
  changeableTarget,
  type EntityRef,
  type LocalChangeError,
  refuseInvalidChange,
} from "./changeTarget.ts";
import { changeLockedRecord, type LockedRecordDeps, type RecordRef } from "./lockedRecord.ts";
import { pushTiming, type StoreChangeDeps, storeChange } from "./storeChange.ts";

export type DeleteRecordDeps = ChangeTargetDeps & LockedRecordDeps & StoreChangeDeps;

/** A local delete: soft-deleted now, pending until the vendor deleted it. Never critical. */
export const deleteRecord = (
  deps: DeleteRecordDeps,
  tenantId: string,
  input: EntityRef & RecordRef,
): Effect.Effect<StoredRecord, LocalChangeError> =>
  Effect.gen(function* () {
    const target = yield* changeableTarget(deps, tenantId, input);
    yield* refuseInvalidChange(target, "delete");
    return yield* changeLockedRecord(deps, target, input, (current) =>
      storeChange(
        deps,
        target,
        false,
        deps.outbox.remove(target.scope, current.externalId, pushTiming(deps.config, target, false)),
      ).pipe(Effect.map(Option.map((applied) => applied.record))),
    );
  });
