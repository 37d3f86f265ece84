import { Schema } from "effect";
import type { EntitySpec } from "../client.ts";
import { ItemWire } from "../wire.ts";
import { companyEntity } from "./companyEntity.ts";

/**
 * A Business Central item (inventory), normalized. BC's empty strings become null;
 * `updatedAt` is BC's `lastModifiedDateTime`.
 */
export const Item = Schema.Struct({
  /** BC's id (a GUID; the API key, unlike `number`, which users may rename). */
  id: Schema.String,
  /** The item number ("No."), e.g. "1896-S". */
  number: Schema.String,
  displayName: Schema.String,
  /** A second description line ("Description 2"). */
  displayName2: Schema.NullOr(Schema.String),
  type: Schema.Literal("Inventory", "Service", "Non-Inventory"),
  blocked: Schema.Boolean,
  gtin: Schema.NullOr(Schema.String),
  /** Quantity on hand, in the base unit of measure. Read-only: item journals move it, not the API. */
  inventory: Schema.Number,
  unitPrice: Schema.Number,
  unitCost: Schema.Number,
  baseUnitOfMeasureCode: Schema.NullOr(Schema.String),
  updatedAt: Schema.Date,
  /** BC's `@odata.etag`: the version conditional writes send back as `If-Match`. */
  etag: Schema.String,
});
export type Item = typeof Item.Type;

const orNull = (value: string) => (value === "" ? null : value);

const itemSpec: EntitySpec<Item, typeof Item.Encoded, ItemWire> = {
  entitySet: "items",
  wire: ItemWire,
  record: Item,
  toRecord: (wire) => ({
    id: wire.id,
    number: wire.number,
    displayName: wire.displayName,
    displayName2: orNull(wire.displayName2 ?? ""),
    type: wire.type,
    blocked: wire.blocked,
    gtin: orNull(wire.gtin),
    inventory: wire.inventory,
    unitPrice: wire.unitPrice,
    unitCost: wire.unitCost,
    baseUnitOfMeasureCode: orNull(wire.baseUnitOfMeasureCode),
    updatedAt: wire.lastModifiedDateTime,
    etag: wire["@odata.etag"],
  }),
};

/**
 * Normalized fields -> BC properties. `id`, `updatedAt` and `etag` are BC's and never sent; null clears
 * a text property (BC takes ""). A local change to `inventory` is refused when submitted (not
 * writable); one that reaches here anyway is sent as given and BC refuses it (400, read-only),
 * which fails the push as InvalidRecord instead of dropping the change silently.
 */
const toWire = (fields: Partial<Item>): Record<string, unknown> => {
  const body: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (name === "id" || name === "updatedAt" || name === "etag" || value === undefined) continue;
    body[name] = value === null ? "" : value;
  }
  return body;
};

/** Items: `companies({id})/items` (see ./companyEntity.ts). BC computes `inventory` from item ledger entries. */
export const items = companyEntity(itemSpec, toWire, [
  "number",
  "displayName",
  "displayName2",
  "type",
  "blocked",
  "gtin",
  "unitPrice",
  "unitCost",
  "baseUnitOfMeasureCode",
]);
