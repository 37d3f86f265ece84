import { Effect, Option } from "effect";
import type { StoredRecord } from "../../store/RecordStore.ts";
import { isWritable, touchesCriticalField } from "../push/localChangeFields.ts";
import { type ChangeTargetDeps, type EntityRef, type LocalChangeError, resolveChangeTarget } from "./changeTarget.ts";
import { changeLockedRecord, type LockedRecordDeps } from "./lockedRecord.ts";
import { pushTiming, type StoreChangeDeps, storeChange } from "./storeChange.ts";

export type ApplyResolutionDeps = ChangeTargetDeps & LockedRecordDeps & StoreChangeDeps;

/** A conflict's resolved record, for the record the conflict is about. */
export type ResolutionInput = EntityRef & {
  readonly externalId: string;
  readonly record: Record<string, unknown>;
  /** The conflict's remote version, which the resolution was made against: the push's `ifVersion` comes from it. */
  readonly remote?: Record<string, unknown> | undefined;
};

/**
 * A conflict's resolution applied as a local change: the resolved record, pushed like any other
 * edit (settling the conflict itself is `store/resolveConflict`'s). Applied whatever the entity's
 * settings say of local changes: the conflict was already there to be resolved.
 */
export const applyResolution = (
  deps: ApplyResolutionDeps,
  tenantId: string,
  input: ResolutionInput,
): Effect.Effect<StoredRecord, LocalChangeError> =>
  Effect.gen(function* () {
    const target = yield* resolveChangeTarget(deps, tenantId, input);
    // The resolved record is whole (read-only fields included, as the remote has them): all of
    // it becomes the local data, its writable fields are pushed. It goes at once only when it
    // changes a critical field's value (it names them all).
    return yield* changeLockedRecord(deps, target, { externalId: input.externalId }, (current) => {
      const changed = Object.fromEntries(
        Object.entries(input.record).filter(([f, v]) => JSON.stringify(current.data[f]) !== JSON.stringify(v)),
      );
      const immediate = touchesCriticalField(target.entity, changed);
      return storeChange(
        deps,
        target,
        immediate,
        deps.outbox.edit(
          target.scope,
          current.externalId,
          input.record,
          pushTiming(deps.config, target, immediate),
          (field) => isWritable(target.entity, field),
          input.remote,
        ),
      ).pipe(Effect.map(Option.map((applied) => applied.record)));
    });
  });
