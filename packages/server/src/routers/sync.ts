import {
  EntitySync,
  LocalChanges,
  MetricsReport,
  PreconditionFailed,
  SyncStatus,
  SyncTriggers,
  toSyncPlanView,
} from "@tandem/core";
import { Effect, Schema } from "effect";
import { runProcedure } from "../errors.ts";
import { authedProcedure, router } from "../trpc.ts";
import { EntityName, ExternalId, Id, input, Limit, ShortText } from "./schemas.ts";

const ConnectionRef = Schema.Struct({ connectionId: Id });

/** A record field's name (whether the entity has it is checked against its schema). */
const FieldName = Schema.String.pipe(Schema.maxLength(100), Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]*$/)).annotations({
  message: () => "must be a field name",
});

export const syncRouter = router({
  /**
   * Queues a sync; a second trigger of a live one answers CONFLICT (`already_running`) with its
   * job id. `push` drains every pending local change of the entity now (pushes also run by
   * themselves, within the entity's push interval).
   */
  trigger: authedProcedure
    .input(
      input(
        Schema.Struct({
          connectionId: Id,
          entity: EntityName,
          mode: Schema.optionalWith(Schema.Literal("delta", "full", "reconcile", "push"), { default: () => "delta" }),
        }),
      ),
    )
    .mutation(({ ctx, input }) =>
      runProcedure(
        ctx,
        Effect.flatMap(SyncTriggers, (s) => s.trigger(ctx.tenantId, input)),
      ),
    ),

  /**
   * Local edits of several records: all checked against the entity first (a refusal names
   * `changes.<i>.fields.<field>` and stores nothing), then each stored as pending and pushed by
   * itself (critical fields at once, the rest within the push interval).
   */
  push: authedProcedure
    .input(
      input(
        Schema.Struct({
          connectionId: Id,
          entity: EntityName,
          changes: Schema.Array(
            Schema.Struct({
              externalId: ExternalId,
              fields: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
            }),
          ).pipe(Schema.minItems(1), Schema.maxItems(1_000)),
        }),
      ),
    )
    .mutation(({ ctx, input }) =>
      runProcedure(
        ctx,
        Effect.flatMap(SyncTriggers, (s) => s.push(ctx.tenantId, input)),
      ),
    ),

  /**
   * A dry run of the entity's first two-way sync: the records created locally matched by the
   * match key (`matchKey`: field names overriding the entity's default, e.g. contacts by email)
   * with every record the vendor has: matched, to create remotely, to create locally, ambiguous
   * (with the candidates). Reads the vendor in full; writes nothing, here or there.
   */
  plan: authedProcedure
    .input(
      input(
        Schema.Struct({
          connectionId: Id,
          entity: EntityName,
          matchKey: Schema.optional(Schema.Array(FieldName).pipe(Schema.minItems(1), Schema.maxItems(10))),
        }),
      ),
    )
    .query(({ ctx, input }) =>
      runProcedure(
        ctx,
        Effect.flatMap(EntitySync, (e) =>
          e.plan({ tenantId: ctx.tenantId, connectionId: input.connectionId, entity: input.entity }, input),
        ).pipe(
          Effect.map((planned) => toSyncPlanView(input.entity, planned)),
          // The vendor could not be read (down, credentials refused, a broken page): the plan
          // cannot be made now, which is not a fault of ours. A 429 keeps its own code.
          Effect.catchIf(
            (e) => e._tag !== "InvalidInput" && e._tag !== "ResourceNotFound" && e._tag !== "RateLimited",
            (e) =>
              Effect.fail(
                new PreconditionFailed({ message: `the vendor could not be read for the plan: ${e.message}` }),
              ),
          ),
        ),
      ),
    ),

  /** Figures over a date range (`2024-01-01`..`2024-12-31` is the year): see docs/metrics-and-alerts.md. */
  metrics: authedProcedure
    .input(
      input(
        Schema.Struct({
          startDate: ShortText,
          endDate: ShortText,
          connectionId: Schema.optional(Id),
        }),
      ),
    )
    .query(({ ctx, input }) =>
      runProcedure(
        ctx,
        Effect.flatMap(MetricsReport, (m) => m.query(ctx.tenantId, input)),
      ),
    ),

  /** Pushes the retry policy gave up on: listed until retried or discarded. */
  deadPushes: router({
    list: authedProcedure
      .input(
        input(
          Schema.Struct({
            connectionId: Schema.optional(Id),
            entity: Schema.optional(EntityName),
            limit: Schema.optional(Limit),
          }),
        ),
      )
      .query(({ ctx, input }) =>
        runProcedure(
          ctx,
          Effect.flatMap(LocalChanges, (l) => l.deadPushes(ctx.tenantId, input)),
        ),
      ),
    /** Pushes it again now, with a fresh set of attempts. */
    retry: authedProcedure.input(input(Schema.Struct({ id: Id }))).mutation(({ ctx, input }) =>
      runProcedure(
        ctx,
        Effect.flatMap(LocalChanges, (l) => l.retryDeadPush(ctx.tenantId, input.id)),
      ),
    ),
    /** Drops it: the record goes back to the last state both sides agreed on (answered). */
    discard: authedProcedure.input(input(Schema.Struct({ id: Id }))).mutation(({ ctx, input }) =>
      runProcedure(
        ctx,
        Effect.flatMap(LocalChanges, (l) => l.discardDeadPush(ctx.tenantId, input.id)),
      ),
    ),
  }),

  status: authedProcedure.input(input(ConnectionRef)).query(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(SyncStatus, (s) => s.status(ctx.tenantId, input.connectionId)),
    ),
  ),

  pause: authedProcedure.input(input(ConnectionRef)).mutation(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(SyncTriggers, (s) => s.setPaused(ctx.tenantId, input.connectionId, true)),
    ),
  ),

  resume: authedProcedure.input(input(ConnectionRef)).mutation(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(SyncTriggers, (s) => s.setPaused(ctx.tenantId, input.connectionId, false)),
    ),
  ),
});
