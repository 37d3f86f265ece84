import { MetricsReport, SyncStatus, SyncTriggers } from "@tandem/core";
import { Effect, Schema } from "effect";
import { runProcedure } from "../errors.ts";
import { authedProcedure, router } from "../trpc.ts";
import { EntityName, ExternalId, Id, input, ShortText } from "./schemas.ts";

const ConnectionRef = Schema.Struct({ connectionId: Id });

export const syncRouter = router({
  /** Queues a sync; a second trigger of a live one answers CONFLICT (`already_running`) with its job id. */
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

  /** Local changes from the host application: stored as pending and pushed (critical fields at once). */
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
