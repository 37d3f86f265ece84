import { randomUUID } from "node:crypto";
import { Effect, Option } from "effect";
import type { AlreadyExists } from "../../errors/Errors.ts";
import { touchesCriticalField } from "../push/localChangeFields.ts";
import {
  type ChangeTargetDeps,
  changeableTarget,
  type EntityRef,
  type LocalChangeError,
  refuseInvalidChange,
} from "./changeTarget.ts";
import { type LocalEdit, pushTiming, type StoreChangeDeps, storeChange } from "./storeChange.ts";

export type CreateRecordDeps = ChangeTargetDeps & StoreChangeDeps;

/** A record the host application creates, and its local id if it has one. */
export type CreateRecordInput = EntityRef & {
  readonly localId?: string | undefined;
  readonly fields: Record<string, unknown>;
};

/**
 * A record the host application creates: pending until the push creates it at the vendor.
 * Without a `localId`, it gets one of Tandem's (`tandem:<uuid>`), to be addressed by until then.
 */
export const createRecord = (
  deps: CreateRecordDeps,
  tenantId: string,
  input: CreateRecordInput,
): Effect.Effect<LocalEdit, LocalChangeError | AlreadyExists> =>
  Effect.gen(function* () {
    const target = yield* changeableTarget(deps, tenantId, input);
    yield* refuseInvalidChange(target, "create", input.fields);
    const immediate = touchesCriticalField(target.entity, input.fields);
    const created = yield* storeChange(
      deps,
      target,
      immediate,
      deps.outbox
        .create(
          target.scope,
          { localId: input.localId ?? `tandem:${randomUUID()}`, fields: input.fields },
          pushTiming(deps.config, target, immediate),
        )
        .pipe(Effect.map(Option.some)),
    );
    return { record: Option.getOrThrow(created).record, immediate } satisfies LocalEdit;
  });
