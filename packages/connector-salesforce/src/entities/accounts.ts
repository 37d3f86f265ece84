import { defineEntity } from "@tandem/core";
import { Schema } from "effect";
import {
  createSObject,
  deleteSObject,
  getSObject,
  readSObjectIds,
  readSObjects,
  type SObjectSpec,
  updateSObject,
} from "../client.ts";
import type { SalesforceConfig } from "../config.ts";
import { isoDateTime, type SObjectRow } from "../wire.ts";

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

/** Normalized changes -> Account fields; null clears a field. */
const toFields = (changes: Partial<Account>): Record<string, string | null> => {
  const fields: Record<string, string | null> = {};
  for (const [field, name] of Object.entries(fieldNames)) {
    const value = changes[field as keyof typeof fieldNames];
    if (value !== undefined) fields[name] = value;
  }
  return fields;
};

/** Accounts: sObject Account, read and written like contacts (see ./contacts.ts). */
export const accounts = defineEntity<Account, SalesforceConfig>({
  record: Account,
  primaryKey: (account) => account.id,
  updatedAt: (account) => account.updatedAt,
  read: (ctx, options) => readSObjects(ctx, accountSpec, options),
  readIds: (ctx) => readSObjectIds(ctx, accountSpec),
  get: (ctx, id) => getSObject(ctx, accountSpec, id),
  write: {
    create: (ctx, record) => createSObject(ctx, accountSpec, toFields(record)),
    update: (ctx, id, changes) => updateSObject(ctx, accountSpec, id, toFields(changes)),
    delete: (ctx, id) => deleteSObject(ctx, accountSpec, id),
  },
  deletes: "api",
  webhooks: true,
});
