import { AlertRuleInput, Alerts } from "@tandem/core";
import { Effect, Schema } from "effect";
import { runProcedure } from "../errors.ts";
import { authedProcedure, router } from "../trpc.ts";
import { Cursor, Id, input, Limit } from "./schemas.ts";

export const alertsRouter = router({
  /** Alerts, newest first: each firing stored once, resolved once. */
  list: authedProcedure
    .input(
      input(
        Schema.Struct({
          status: Schema.optional(Schema.Literal("firing", "resolved")),
          ruleId: Schema.optional(Id),
          connectionId: Schema.optional(Id),
          cursor: Schema.optional(Cursor),
          limit: Schema.optional(Limit),
        }),
      ),
    )
    .query(({ ctx, input }) =>
      runProcedure(
        ctx,
        Effect.flatMap(Alerts, (a) => a.list(ctx.tenantId, input)),
      ),
    ),
  rules: authedProcedure.query(({ ctx }) =>
    runProcedure(
      ctx,
      Effect.flatMap(Alerts, (a) => a.rules(ctx.tenantId)),
    ),
  ),
  /** Creates or updates a rule (by `id`, else by name); params are validated per kind. */
  setRule: authedProcedure.input(input(Schema.encodedSchema(AlertRuleInput))).mutation(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(Alerts, (a) => a.setRule(ctx.tenantId, input)),
    ),
  ),
});
