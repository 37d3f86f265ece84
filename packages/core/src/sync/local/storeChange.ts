import { type Context, Effect, Option } from "effect";
import type { Database } from "../../db/Database.ts";
import type { JobQueue } from "../../queue/JobQueue.ts";
import type { RetryPolicy } from "../../queue/RetryPolicy.ts";
import type { AppliedChange, PushOutbox } from "../../store/PushOutbox.ts";
import type { StoredRecord } from "../../store/RecordStore.ts";
import { type PushOptions, pushSettings } from "../push/PushConfig.ts";
import { ensureDrain } from "../push/pushDrainJob.ts";
import type { ChangeTarget } from "./changeTarget.ts";

/** A stored local edit, and whether it goes at once (it touched a critical field). */
export interface LocalEdit {
  readonly record: StoredRecord;
  /** Queued to be pushed at once, with high priority; otherwise within the entity's push interval. */
  readonly immediate: boolean;
}

/** What storing a local change takes: the outbox it is written to, and the queue its drain goes on. */
export interface StoreChangeDeps {
  readonly db: Context.Tag.Service<Database>;
  readonly outbox: Context.Tag.Service<PushOutbox>;
  readonly queue: Context.Tag.Service<JobQueue>;
  readonly policy: Context.Tag.Service<RetryPolicy>;
  readonly config: PushOptions;
}

/** When a change is pushed: at once when critical, else within the entity's push interval. */
export const pushTiming = (config: PushOptions, target: ChangeTarget, critical: boolean) => ({
  critical,
  delayMs: pushSettings(config, target.entity).intervalMs,
});

/** The change (`apply`, an outbox write) and, when its entry needs one, a drain: in one transaction. */
export const storeChange = <E>(
  deps: StoreChangeDeps,
  target: ChangeTarget,
  critical: boolean,
  apply: Effect.Effect<Option.Option<AppliedChange>, E>,
) =>
  deps.db.transaction(
    Effect.gen(function* () {
      const applied = yield* apply;
      if (Option.isSome(applied) && applied.value.wakeAt !== undefined) {
        yield* ensureDrain(deps, target.scope, target.connector.name, applied.value.wakeAt, critical);
      }
      return applied;
    }),
  );
