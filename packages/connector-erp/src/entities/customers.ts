import { Schema } from "effect";
import type { EntitySpec } from "../client.ts";
import { CustomerWire } from "../wire.ts";
import { companyEntity } from "./companyEntity.ts";

/** What a customer is blocked for: nothing, shipments, invoices, or every transaction. */
export const CustomerBlocked = Schema.Literal("none", "ship", "invoice", "all");

/**
 * A Business Central customer, normalized. BC's empty strings become null, its `blocked`
 * option (" ", "Ship", "Invoice", "All") a lower-case literal; `updatedAt` is `lastModifiedDateTime`.
 */
export const Customer = Schema.Struct({
  /** BC's id (a GUID). */
  id: Schema.String,
  /** The customer number ("No."), e.g. "10000". */
  number: Schema.String,
  displayName: Schema.String,
  email: Schema.NullOr(Schema.String),
  phoneNumber: Schema.NullOr(Schema.String),
  blocked: CustomerBlocked,
  updatedAt: Schema.Date,
  /** BC's `@odata.etag`: the version conditional writes send back as `If-Match`. */
  etag: Schema.String,
});
export type Customer = typeof Customer.Type;

const blockedFromWire = { " ": "none", "": "none", Ship: "ship", Invoice: "invoice", All: "all" } as const;
const blockedToWire = { none: " ", ship: "Ship", invoice: "Invoice", all: "All" } as const;

const orNull = (value: string) => (value === "" ? null : value);

const customerSpec: EntitySpec<Customer, typeof Customer.Encoded, CustomerWire> = {
  entitySet: "customers",
  wire: CustomerWire,
  record: Customer,
  toRecord: (wire) => ({
    id: wire.id,
    number: wire.number,
    displayName: wire.displayName,
    email: orNull(wire.email),
    phoneNumber: orNull(wire.phoneNumber),
    blocked: blockedFromWire[wire.blocked],
    updatedAt: wire.lastModifiedDateTime,
    etag: wire["@odata.etag"],
  }),
};

/** Normalized fields -> BC properties; null clears a text property (BC takes ""). */
const toWire = (fields: Partial<Customer>): Record<string, unknown> => {
  const body: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (name === "id" || name === "updatedAt" || name === "etag" || value === undefined) continue;
    if (name === "blocked") body.blocked = blockedToWire[value as Customer["blocked"]] ?? value;
    else body[name] = value === null ? "" : value;
  }
  return body;
};

/** Customers: `companies({id})/customers` (see ./companyEntity.ts). */
export const customers = companyEntity(customerSpec, toWire, [
  "number",
  "displayName",
  "email",
  "phoneNumber",
  "blocked",
]);
