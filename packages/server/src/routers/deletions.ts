import { DeletionQuarantine } from "@tandem/core";
import { Effect, Schema } from "effect";
import type { Context } from "../context.ts";
import { runProcedure } from "../errors.ts";
import { authedProcedure, router } from "../trpc.ts";
import { Cursor, EntityName, Id, input, Limit, Note } from "./schemas.ts";

/** Who decided, as the queue records it: the API key, or the admin key. */
const actorOf = (ctx: Context) => `api-key:${ctx.principal?.role === "tenant" ? ctx.principal.keyId : "admin"}`;

/** One connection x entity's whole queue. */
const QueueScope = { connectionId: Id, entity: EntityName };

/**
 * The mass-deletion guard's review queue: deletions a reconciliation, a delta or a webhook burst
 * reported that were held back, the records left live. Each is approved (the deletion is applied)
 * or rejected (the record is kept), one by one or all of a connection x entity at once; a record
 * seen live remotely again leaves the queue by itself (`reappeared`).
 */
export const deletionsRouter = router({
  quarantined: router({
    /** Held deletions, oldest first; every status unless filtered (`pending`: waiting for review). */
    list: authedProcedure
      .input(
        input(
          Schema.Struct({
            status: Schema.optional(Schema.Literal("pending", "approved", "rejected", "reappeared")),
            connectionId: Schema.optional(Id),
            entity: Schema.optional(EntityName),
            cursor: Schema.optional(Cursor),
            limit: Schema.optional(Limit),
          }),
        ),
      )
      .query(({ ctx, input }) =>
        runProcedure(
          ctx,
          Effect.flatMap(DeletionQuarantine, (q) => q.list(ctx.tenantId, input)),
        ),
      ),
    get: authedProcedure.input(input(Schema.Struct({ id: Id }))).query(({ ctx, input }) =>
      runProcedure(
        ctx,
        Effect.flatMap(DeletionQuarantine, (q) => q.get(ctx.tenantId, input.id)),
      ),
    ),
    /** Applies one pending deletion (recorded with the API key that approved it). */
    approve: authedProcedure.input(input(Schema.Struct({ id: Id }))).mutation(({ ctx, input }) =>
      runProcedure(
        ctx,
        Effect.flatMap(DeletionQuarantine, (q) => q.approve(ctx.tenantId, input.id, actorOf(ctx))),
      ),
    ),
    /** Drops one pending deletion and keeps the record, with an optional reason for the audit trail. */
    reject: authedProcedure
      .input(input(Schema.Struct({ id: Id, reason: Schema.optional(Note) })))
      .mutation(({ ctx, input }) =>
        runProcedure(
          ctx,
          Effect.flatMap(DeletionQuarantine, (q) => q.reject(ctx.tenantId, input.id, actorOf(ctx), input.reason)),
        ),
      ),
    /** Applies every pending deletion of a connection x entity: `{ approved, deleted }`. */
    approveAll: authedProcedure.input(input(Schema.Struct(QueueScope))).mutation(({ ctx, input }) =>
      runProcedure(
        ctx,
        Effect.flatMap(DeletionQuarantine, (q) => q.approveAll(ctx.tenantId, input, actorOf(ctx))),
      ),
    ),
    /** Drops every pending deletion of a connection x entity, keeping the records: `{ rejected }`. */
    rejectAll: authedProcedure
      .input(input(Schema.Struct({ ...QueueScope, reason: Schema.optional(Note) })))
      .mutation(({ ctx, input: { reason, ...scope } }) =>
        runProcedure(
          ctx,
          Effect.flatMap(DeletionQuarantine, (q) => q.rejectAll(ctx.tenantId, scope, actorOf(ctx), reason)),
        ),
      ),
  }),
});
