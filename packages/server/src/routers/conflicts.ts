import { Conflicts, Records } from "@tandem/core";
import { Effect, Schema } from "effect";
import { runProcedure } from "../errors.ts";
import { authedProcedure, router } from "../trpc.ts";
import { Cursor, Id, input, Limit } from "./schemas.ts";

const Resolution = Schema.Union(
  Schema.Struct({ choose: Schema.Literal("local", "remote") }),
  Schema.Struct({
    choose: Schema.Literal("values"),
    values: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  }),
);

export const conflictsRouter = router({
  list: authedProcedure
    .input(
      input(
        Schema.Struct({
          status: Schema.optional(Schema.Literal("open", "resolved")),
          connectionId: Schema.optional(Id),
          cursor: Schema.optional(Cursor),
          limit: Schema.optional(Limit),
        }),
      ),
    )
    .query(({ ctx, input }) =>
      runProcedure(
        ctx,
        Effect.flatMap(Conflicts, (c) => c.list(ctx.tenantId, input)),
      ),
    ),
  get: authedProcedure.input(input(Schema.Struct({ id: Id }))).query(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(Conflicts, (c) => c.get(ctx.tenantId, input.id)),
    ),
  ),
  /** Settles an open conflict (recorded as resolved by this API key) and pushes the result. */
  resolve: authedProcedure.input(input(Schema.Struct({ id: Id, resolution: Resolution }))).mutation(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(Records, (r) =>
        r.resolveConflict(
          ctx.tenantId,
          input.id,
          input.resolution,
          `api-key:${ctx.principal?.role === "tenant" ? ctx.principal.keyId : "admin"}`,
        ),
      ),
    ),
  ),
});
