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
 * A Salesforce Contact, normalized. `updatedAt` is SystemModstamp (every change, system ones
 * included: the delta cursor); `lastModifiedAt` is LastModifiedDate (user edits only).
 */
export const Contact = Schema.Struct({
  /** The 18-character record id (`003...`). */
  id: Schema.String.pipe(Schema.pattern(/^[a-zA-Z0-9]{18}$/)),
  firstName: Schema.NullOr(Schema.String),
  /** Required by Salesforce. */
  lastName: Schema.String,
  email: Schema.NullOr(Schema.String),
  phone: Schema.NullOr(Schema.String),
  /** The Account the contact belongs to (`001...`), if any. */
  accountId: Schema.NullOr(Schema.String),
  createdAt: Schema.Date,
  lastModifiedAt: Schema.Date,
  updatedAt: Schema.Date,
});
export type Contact = typeof Contact.Type;

/** Normalized field -> Contact field (the writable ones). */
const fieldNames = {
  firstName: "FirstName",
  lastName: "LastName",
  email: "Email",
  phone: "Phone",
  accountId: "AccountId",
} as const satisfies Partial<Record<keyof Contact, string>>;

const contactSpec: SObjectSpec<Contact, typeof Contact.Encoded> = {
  sobject: "Contact",
  fields: [...Object.values(fieldNames), "CreatedDate", "LastModifiedDate"],
  record: Contact,
  toRecord: (row: SObjectRow) =>
    ({
      id: row.Id,
      firstName: row.FirstName ?? null,
      lastName: row.LastName,
      email: row.Email ?? null,
      phone: row.Phone ?? null,
      accountId: row.AccountId ?? null,
      createdAt: isoDateTime(row.CreatedDate),
      lastModifiedAt: isoDateTime(row.LastModifiedDate),
      updatedAt: isoDateTime(row.SystemModstamp),
    }) as typeof Contact.Encoded,
};

/** Normalized changes -> Contact fields; null clears a field (Salesforce takes JSON null). */
const toFields = (changes: Partial<Contact>): Record<string, string | null> => {
  const fields: Record<string, string | null> = {};
  for (const [field, name] of Object.entries(fieldNames)) {
    const value = changes[field as keyof typeof fieldNames];
    if (value !== undefined) fields[name] = value;
  }
  return fields;
};

/**
 * Contacts: sObject Contact. Full reads query live contacts by SystemModstamp; deltas query the
 * recycle bin too (`queryAll`), reporting deletions of the last 15 days; Outbound Messages for
 * Contact parse to `updated` events. Writes: create, update, delete (to the recycle bin).
 */
export const contacts = defineEntity<Contact, SalesforceConfig>({
  record: Contact,
  primaryKey: (contact) => contact.id,
  updatedAt: (contact) => contact.updatedAt,
  read: (ctx, options) => readSObjects(ctx, contactSpec, options),
  readIds: (ctx) => readSObjectIds(ctx, contactSpec),
  get: (ctx, id) => getSObject(ctx, contactSpec, id),
  write: {
    create: (ctx, record) => createSObject(ctx, contactSpec, toFields(record)),
    update: (ctx, id, changes) => updateSObject(ctx, contactSpec, id, toFields(changes)),
    delete: (ctx, id) => deleteSObject(ctx, contactSpec, id),
  },
  deletes: "api",
  webhooks: true,
});
