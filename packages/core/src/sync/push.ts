import type { AuthExpired } from "@tandem/connector-sdk";
import { type Context, Effect } from "effect";
import type { RetryPolicy } from "../queue/RetryPolicy.ts";
import type { PushOutbox } from "../store/PushOutbox.ts";
import type { PullSettlementDeps } from "./PullSettlement.ts";
import { type DrainClaims, type DrainResult, drainOutbox } from "./push/drainOutbox.ts";
import { type PushOptions, pushSettings } from "./push/PushConfig.ts";
import { groupWrites } from "./push/pushWriter.ts";
import { type ResolvedEntity, unsupported } from "./ResolvedEntity.ts";

export interface PushDeps {
  readonly outbox: Context.Tag.Service<PushOutbox>;
  readonly policy: Context.Tag.Service<RetryPolicy>;
  readonly config: PushOptions;
  readonly pull: PullSettlementDeps;
}

/**
 * Push (local -> remote): drains the entity's outbox through its writes (see `drainOutbox`). Push
 * jobs drain what is due, as local changes come due; a push asked for now drains every pending
 * entry.
 */
export const drain = (
  deps: PushDeps,
  r: ResolvedEntity,
  options: DrainClaims,
): Effect.Effect<DrainResult, AuthExpired> => {
  const settings = pushSettings(deps.config, r.entity);
  return drainOutbox(deps, r, settings, groupWrites(settings.concurrency), options);
};

/**
 * The `push` mode of a run: every pending local change of the entity, written now (creates only
 * when `creates`: the entity's initial matching is done).
 */
export const push = (deps: PushDeps, r: ResolvedEntity, claimer: string, creates: boolean) =>
  Effect.gen(function* () {
    if (r.entity.write === undefined) return yield* unsupported(r, "the entity has no write");
    const result = yield* drain(deps, r, { claimer, which: "all", creates });
    return {
      created: result.created,
      updated: result.updated,
      unchanged: result.unchanged,
      deleted: result.deleted,
      errors: result.errors,
      pages: 1,
      resumed: false,
    };
  });
