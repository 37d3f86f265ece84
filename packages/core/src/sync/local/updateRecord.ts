import { Effect, Option } from "effect";
import { touchesCriticalField } from "../push/localChangeFields.ts";
import {
  type ChangeTargetDeps,
  changeableTarget,
  type EntityRef,
  type LocalChangeError,
  refuseInvalidChange,
} from "./changeTarget.ts";
import { changeLockedRecord, type LockedRecordDeps, type RecordRef } from "./lockedRecord.ts";
import { type LocalEdit, pushTiming, type StoreChangeDeps, storeChange } from "./storeChange.ts";

export type UpdateRecordDeps = ChangeTargetDeps & LockedRecordDeps & StoreChangeDeps;

/** Some fields of one record, edited locally. */
export type UpdateRecordInput = EntityRef & RecordRef & { readonly fields: Record<string, unknown> };

/**
 * A local edit of some fields, coalesced into the record's pending push. `path` prefixes the
 * issues of a refused change (default `fields`).
 */
export const updateRecord = (
  deps: UpdateRecordDeps,
  tenantId: string,
  input: UpdateRecordInput,
  path: ReadonlyArray<string> = ["fields"],
): Effect.Effect<LocalEdit, LocalChangeError> =>
  Effect.gen(function* () {
    const target = yield* changeableTarget(deps, tenantId, input);
    yield* refuseInvalidChange(target, "update", input.fields, path);
    const immediate = touchesCriticalField(target.entity, input.fields);
    const record = yield* changeLockedRecord(deps, target, input, (current) =>
      storeChange(
        deps,
        target,
        immediate,
        deps.outbox.edit(target.scope, current.externalId, input.fields, pushTiming(deps.config, target, immediate)),
      ).pipe(Effect.map(Option.map((applied) => applied.record))),
    );
    return { record, immediate } satisfies LocalEdit;
  });
