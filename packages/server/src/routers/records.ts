import { Records } from "@tandem/core";
import { Effect, Schema } from "effect";
import { runProcedure } from "../errors.ts";
import { authedProcedure, router } from "../trpc.ts";
import { EntityName, ExternalId, FeedCursor, Id, input, Limit, LocalId, Timestamp } from "./schemas.ts";

const Fields = Schema.Record({ key: Schema.String, value: Schema.Unknown });

/** A record by the vendor's id or by the host application's: exactly one of them. */
const RecordRef = Schema.Struct({
  connectionId: Id,
  entity: EntityName,
  externalId: Schema.optional(ExternalId),
  localId: Schema.optional(LocalId),
}).pipe(
  Schema.filter((ref) =>
    (ref.externalId === undefined) !== (ref.localId === undefined)
      ? true
      : { path: ["externalId"], message: "name the record by exactly one of externalId and localId" },
  ),
);

export const recordsRouter = router({
  /** The change feed: records changed after `cursor` (or `modifiedAfter`), oldest change first, with both ids. */
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
  /** One record, by `externalId` or `localId`. */
  get: authedProcedure.input(input(RecordRef)).query(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(Records, (r) => r.get(ctx.tenantId, input)),
    ),
  ),
  /**
   * A record created locally, with the host's own id (`localId`, optional): pending, without an
   * external id, until the push creates it at the vendor. Fields are checked against the entity.
   */
  create: authedProcedure
    .input(
      input(
        Schema.Struct({
          connectionId: Id,
          entity: EntityName,
          localId: Schema.optional(LocalId),
          fields: Fields,
        }),
      ),
    )
    .mutation(({ ctx, input }) =>
      runProcedure(
        ctx,
        Effect.flatMap(Records, (r) => r.create(ctx.tenantId, input)),
      ),
    ),
  /** A local edit: checked against the entity, then pending until the vendor took it (synced) or refused it (failed). */
  update: authedProcedure
    .input(input(Schema.extend(RecordRef, Schema.Struct({ fields: Fields }))))
    .mutation(({ ctx, input }) =>
      runProcedure(
        ctx,
        Effect.flatMap(Records, (r) => r.update(ctx.tenantId, input)),
      ),
    ),
  /** A local delete: the record is deleted now, and pending until the vendor deleted it too. */
  delete: authedProcedure.input(input(RecordRef)).mutation(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(Records, (r) => r.delete(ctx.tenantId, input)),
    ),
  ),
});
