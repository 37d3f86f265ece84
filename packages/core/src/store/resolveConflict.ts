import { type Context, Effect } from "effect";
import type { Database } from "../db/Database.ts";
import { InvalidInput, PreconditionFailed, ResourceNotFound } from "../errors/Errors.ts";
import { type ConflictRow, findConflict, resolveOpen } from "./ConflictRows.ts";
import type { ManualResolution } from "./Conflicts.ts";

/** A conflict of the tenant, or ResourceNotFound. */
export const findOwnConflict = (db: Context.Tag.Service<Database>, tenantId: string, id: string) =>
  db
    .query((k) => findConflict(k, tenantId, id))
    .pipe(
      Effect.orDie,
      Effect.flatMap((row) =>
        row ? Effect.succeed(row) : Effect.fail(new ResourceNotFound({ resource: "conflict", id })),
      ),
    );

/**
 * Settles an open conflict as a person chose (a value for every conflicting field, and no other);
 * answers the resolved row and the record to apply.
 */
export const resolveConflict = (
  db: Context.Tag.Service<Database>,
  tenantId: string,
  id: string,
  resolution: ManualResolution,
  actor: string,
): Effect.Effect<
  { readonly row: ConflictRow; readonly record: Record<string, unknown> },
  ResourceNotFound | PreconditionFailed | InvalidInput
> =>
  db.transaction(
    Effect.gen(function* () {
      const row = yield* findOwnConflict(db, tenantId, id);
      if (row.status !== "open")
        return yield* new PreconditionFailed({ message: `conflict ${id} is already resolved` });
      const values =
        resolution.choose === "values"
          ? resolution.values
          : Object.fromEntries(row.fields.map((f) => [f, (resolution.choose === "local" ? row.local : row.remote)[f]]));
      const missing = row.fields.filter((f) => !(f in values));
      const extra = Object.keys(values).filter((f) => !row.fields.includes(f));
      if (missing.length > 0 || extra.length > 0) {
        return yield* new InvalidInput({
          issues: [
            ...missing.map((f) => ({
              path: `values.${f}`,
              message: "a value is required for this conflicting field",
            })),
            ...extra.map((f) => ({ path: `values.${f}`, message: "not a conflicting field of this conflict" })),
          ],
        });
      }
      // Only an open row is updated: two people resolving at once cannot both win.
      const updated = yield* db
        .query((k) => resolveOpen(k, id, { values, resolvedBy: actor, at: new Date() }))
        .pipe(Effect.orDie);
      if (updated === undefined)
        return yield* new PreconditionFailed({ message: `conflict ${id} is already resolved` });
      return { row: updated, record: { ...row.merged, ...values } };
    }),
  );
