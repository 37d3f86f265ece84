import { type Context, Effect } from "effect";
import type { Database } from "../../db/Database.ts";
import { InvalidInput, PreconditionFailed, type ResourceNotFound } from "../../errors/Errors.ts";
import { JobPriority } from "../../queue/jobs/priority.ts";
import type { PushOutbox } from "../../store/PushOutbox.ts";
import type { Connections } from "../../tenancy/Connections.ts";
import {
  type DrainSchedulingDeps,
  ensureDrain,
  PUSH_DRAIN_JOB_KIND,
  type PushDrainPayload,
} from "../push/pushDrainJob.ts";
import { type ChangeTargetDeps, changeableTarget, type EntityRef, type LocalChangeError } from "./changeTarget.ts";

/**
 * Every pending change of the entity, pushed now (`sync.trigger` in mode push): a drain of all
 * its entries, due or not, queued on demand. Refused while the connection is paused.
 */
export const pushNow = (
  deps: ChangeTargetDeps & DrainSchedulingDeps,
  tenantId: string,
  input: EntityRef,
): Effect.Effect<{ readonly jobId: string; readonly status: "queued" }, LocalChangeError> =>
  Effect.gen(function* () {
    const target = yield* changeableTarget(deps, tenantId, input);
    if (target.paused) {
      return yield* new PreconditionFailed({ message: `connection ${input.connectionId} is paused; resume it first` });
    }
    if (target.entity.write === undefined) {
      return yield* new InvalidInput({
        issues: [
          { path: "entity", message: `connector ${target.connector.name} cannot write ${input.entity} records` },
        ],
      });
    }
    const payload: PushDrainPayload = { connectionId: input.connectionId, entity: input.entity, all: true };
    const { id } = yield* deps.queue
      .enqueue({
        kind: PUSH_DRAIN_JOB_KIND,
        payload,
        priority: JobPriority.onDemand,
        tenantId,
        connectionId: input.connectionId,
        maxAttempts: deps.policy.maxAttemptsFor(target.connector.name),
      })
      .pipe(Effect.orDie);
    return { jobId: id, status: "queued" as const };
  });

export interface WakeDrainsDeps extends DrainSchedulingDeps {
  readonly db: Context.Tag.Service<Database>;
  readonly connections: Context.Tag.Service<Connections>;
  readonly outbox: Context.Tag.Service<PushOutbox>;
}

/** Queues drains for a connection's pending changes, each entity's by its next due entry (after it is resumed). */
export const wakeDrains = (
  deps: WakeDrainsDeps,
  tenantId: string,
  connectionId: string,
): Effect.Effect<void, ResourceNotFound> =>
  Effect.gen(function* () {
    const { connector } = yield* deps.connections.resolve(tenantId, connectionId);
    for (const entity of Object.keys(connector.entities)) {
      const scope = { tenantId, connectionId, entity };
      const due = yield* deps.outbox.nextDue(scope);
      if (due !== null) yield* deps.db.transaction(ensureDrain(deps, scope, connector.name, due, false));
    }
  });
