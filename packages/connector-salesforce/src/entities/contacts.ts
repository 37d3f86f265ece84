import { Schema } from "effect";
import type { SObjectSpec } from "../client.ts";
import { isoDateTime, type SObjectRow } from "../wire.ts";
import { sobjectEntity } from "./sobjectEntity.ts";

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

/** Contacts: sObject Contact (see ./sobjectEntity.ts). */
export const contacts = sobjectEntity(contactSpec, fieldNames);
