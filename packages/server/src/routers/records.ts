import { Records } from "@tandem/core";
import { Effect, Schema } from "effect";
import { runProcedure } from "../errors.ts";
import { authedProcedure, router } from "../trpc.ts";
import { EntityName, ExternalId, FeedCursor, Id, input, Limit, Timestamp } from "./schemas.ts";

const RecordRef = Schema.Struct({ connectionId: Id, entity: EntityName, externalId: ExternalId });

export const recordsRouter = router({
  /** The change feed: records changed after `cursor` (or `modifiedAfter`), oldest change first. */
  list: authedProcedure
    .input(
      input(
        Schema.Struct({
          connectionId: Id,
          entity: EntityName,
          cursor: Schema.optional(FeedCursor),
          limit: Schema.optional(Limit),
          modifiedAfter: Schema.optional(Timestamp),
          includeDeleted: Schema.optional(Schema.Boolean),
        }),
      ),
    )
    .query(({ ctx, input }) =>
      runProcedure(
        ctx,
        Effect.flatMap(Records, (r) => r.list(ctx.tenantId, input)),
      ),
    ),
  get: authedProcedure.input(input(RecordRef)).query(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(Records, (r) => r.get(ctx.tenantId, input)),
    ),
  ),
  /** A local edit: pending until the connector wrote it (synced) or refused it (failed). */
  update: authedProcedure
    .input(
      input(
        Schema.Struct({ ...RecordRef.fields, fields: Schema.Record({ key: Schema.String, value: Schema.Unknown }) }),
      ),
    )
    .mutation(({ ctx, input }) =>
      runProcedure(
        ctx,
        Effect.flatMap(Records, (r) => r.update(ctx.tenantId, input)),
      ),
    ),
});
