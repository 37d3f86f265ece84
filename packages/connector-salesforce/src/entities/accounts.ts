import { Schema } from "effect";
import type { SObjectSpec } from "../client.ts";
import { isoDateTime, type SObjectRow } from "../wire.ts";
import { sobjectEntity } from "./sobjectEntity.ts";

/**
 * A Salesforce Account, normalized. `updatedAt` is SystemModstamp (the delta cursor);
 * `lastModifiedAt` is LastModifiedDate (user edits only).
 */
export const Account = Schema.Struct({
  /** The 18-character record id (`001...`). */
  id: Schema.String.pipe(Schema.pattern(/^[a-zA-Z0-9]{18}$/)),
  /** Required by Salesforce. */
  name: Schema.String,
  website: Schema.NullOr(Schema.String),
  phone: Schema.NullOr(Schema.String),
  /** A picklist value (e.g. "Technology", "Retail"). */
  industry: Schema.NullOr(Schema.String),
  createdAt: Schema.Date,
  lastModifiedAt: Schema.Date,
  updatedAt: Schema.Date,
});
export type Account = typeof Account.Type;

/** Normalized field -> Account field (the writable ones). */
const fieldNames = {
  name: "Name",
  website: "Website",
  phone: "Phone",
  industry: "Industry",
} as const satisfies Partial<Record<keyof Account, string>>;

const accountSpec: SObjectSpec<Account, typeof Account.Encoded> = {
  sobject: "Account",
  fields: [...Object.values(fieldNames), "CreatedDate", "LastModifiedDate"],
  record: Account,
  toRecord: (row: SObjectRow) =>
    ({
      id: row.Id,
      name: row.Name,
      website: row.Website ?? null,
      phone: row.Phone ?? null,
      industry: row.Industry ?? null,
      createdAt: isoDateTime(row.CreatedDate),
      lastModifiedAt: isoDateTime(row.LastModifiedDate),
      updatedAt: isoDateTime(row.SystemModstamp),
    }) as typeof Account.Encoded,
};

/** Accounts: sObject Account (see ./sobjectEntity.ts). */
export const accounts = sobjectEntity(accountSpec, fieldNames);
