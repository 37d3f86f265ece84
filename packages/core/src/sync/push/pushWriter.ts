import type { ConnectorError } from "@tandem/connector-sdk";
import { callConnector } from "@tandem/connector-sdk/runtime";
import { Effect } from "effect";
import type { PushOperation } from "../../db/schema.ts";
import { type ResolvedEntity, unsupported } from "../ResolvedEntity.ts";
import type { EntityNotSupported } from "../SyncRun.ts";

/** One record of a group to write. */
export interface PushItem {
  /** The record's external id (for a create, the provisional one: the vendor assigns the real one). */
  readonly externalId: string;
  /** In the record's type: all its fields for a create, its unpushed changes for an update, none for a delete. */
  readonly fields: Record<string, unknown>;
}

/** What became of one item of a group. */
export type PushOutcome =
  /** The vendor took it; `remote` is its answer (the record as it now is), undefined for a delete. */
  | { readonly _tag: "Written"; readonly remote: unknown }
  | { readonly _tag: "Failed"; readonly error: ConnectorError | EntityNotSupported };

/** Writes one group, one outcome per item, in the items' order. */
export type GroupWriter = (
  r: ResolvedEntity,
  operation: PushOperation,
  items: ReadonlyArray<PushItem>,
) => Effect.Effect<ReadonlyArray<PushOutcome>>;

const failed = (error: ConnectorError | EntityNotSupported): PushOutcome => ({ _tag: "Failed", error });

/** One item through the entity's single write of the operation. */
const writeOne = (r: ResolvedEntity, operation: PushOperation, item: PushItem): Effect.Effect<PushOutcome> => {
  const write = r.entity.write;
  const call = (): Effect.Effect<unknown, ConnectorError | EntityNotSupported> => {
    switch (operation) {
      case "create": {
        const create = write?.create;
        return create === undefined
          ? Effect.fail(unsupported(r, "the entity has no write.create"))
          : callConnector(() => create(r.ctx, item.fields));
      }
      case "update": {
        const update = write?.update;
        return update === undefined
          ? Effect.fail(unsupported(r, "the entity has no write.update"))
          : callConnector(() => update(r.ctx, item.externalId, item.fields));
      }
      case "delete": {
        const remove = write?.delete;
        return remove === undefined
          ? Effect.fail(unsupported(r, "the entity has no write.delete"))
          : callConnector(() => remove(r.ctx, item.externalId)).pipe(
              Effect.as(undefined),
              // Gone already: what the delete wanted.
              Effect.catchTag("NotFound", () => Effect.succeed(undefined)),
            );
      }
    }
  };
  return call().pipe(
    Effect.map((remote): PushOutcome => ({ _tag: "Written", remote })),
    Effect.catchAll((error) => Effect.succeed(failed(error))),
  );
};

/**
 * The drain's writer: one group is the due entries of one connection x entity x operation. Today
 * each item goes through the entity's single write (`write.create`, `update`, `delete`),
 * `concurrency` at a time, and one item's failure is its own outcome, never the group's. Batch
 * writes plug in here: where the entity offers a batch of the operation and the group has more
 * than one item, send it in chunks of the vendor's batch size and map each per-item result to
 * an outcome in the items' order.
 */
export const singleWrites =
  (concurrency: number): GroupWriter =>
  (r, operation, items) =>
    Effect.forEach(items, (item) => writeOne(r, operation, item), { concurrency });
