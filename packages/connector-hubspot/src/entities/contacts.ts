import { defineEntity, InvalidRecord } from "@tandem/connector-sdk";
import { Schema } from "effect";
import {
  type BatchFailure,
  batchMaxInputs,
  batchRequest,
  type CrmObjectSpec,
  decodeRecord,
  getCrmObject,
  getCrmObjects,
  type HubSpotContext,
  readCrmObjectIds,
  readCrmObjects,
} from "../client.ts";
import type { HubSpotConfig } from "../config.ts";
import { crmObjectWrite } from "../crmWrites.ts";
import type { CrmObjectWire } from "../wire.ts";

/**
 * A HubSpot contact, normalized. `updatedAt` is HubSpot's `lastmodifieddate`; `archived`
 * records come from the archived listing and mean "deleted in HubSpot".
 */
export const Contact = Schema.Struct({
  /** HubSpot's numeric object id, as a string. */
  id: Schema.String.pipe(Schema.pattern(/^\d+$/)),
  email: Schema.NullOr(Schema.String),
  firstName: Schema.NullOr(Schema.String),
  lastName: Schema.NullOr(Schema.String),
  phone: Schema.NullOr(Schema.String),
  company: Schema.NullOr(Schema.String),
  jobTitle: Schema.NullOr(Schema.String),
  lifecycleStage: Schema.NullOr(Schema.String),
  createdAt: Schema.Date,
  updatedAt: Schema.Date,
  archived: Schema.Boolean,
  archivedAt: Schema.NullOr(Schema.Date),
});
export type Contact = typeof Contact.Type;

/** Normalized field -> HubSpot property (the writable ones). */
const propertyNames = {
  email: "email",
  firstName: "firstname",
  lastName: "lastname",
  phone: "phone",
  company: "company",
  jobTitle: "jobtitle",
  lifecycleStage: "lifecyclestage",
} as const satisfies Partial<Record<keyof Contact, string>>;

const contactSpec: CrmObjectSpec<Contact, typeof Contact.Encoded> = {
  objectType: "contacts",
  lastModifiedProperty: "lastmodifieddate",
  uniqueProperty: "email",
  properties: [...Object.values(propertyNames), "createdate", "lastmodifieddate"],
  record: Contact,
  toRecord: (wire: CrmObjectWire) => ({
    id: wire.id,
    email: wire.properties.email ?? null,
    firstName: wire.properties.firstname ?? null,
    lastName: wire.properties.lastname ?? null,
    phone: wire.properties.phone ?? null,
    company: wire.properties.company ?? null,
    jobTitle: wire.properties.jobtitle ?? null,
    lifecycleStage: wire.properties.lifecyclestage ?? null,
    createdAt: wire.createdAt,
    updatedAt: wire.updatedAt,
    archived: wire.archived,
    archivedAt: wire.archivedAt ?? null,
  }),
};

/** Normalized changes -> HubSpot properties; null clears a property (HubSpot takes ""). */
const toProperties = (changes: Partial<Contact>): Record<string, string> => {
  const properties: Record<string, string> = {};
  for (const [field, property] of Object.entries(propertyNames)) {
    const value = changes[field as keyof typeof propertyNames];
    if (value !== undefined) properties[property] = value ?? "";
  }
  return properties;
};

/**
 * Contacts: `/crm/v3/objects/contacts`. Full reads list, deltas search `lastmodifieddate`
 * (restarting past the 10,000-result cap), deletions come from the archived listing and
 * `contact.deletion` webhooks. Writes: create (409 on a duplicate email -> Conflict), update, archive,
 * one at a time or in batches of 100 (see ../crmWrites.ts).
 */
export const contacts = defineEntity<Contact, HubSpotConfig>({
  record: Contact,
  primaryKey: (contact) => contact.id,
  updatedAt: (contact) => contact.updatedAt,
  read: (ctx, options) => readCrmObjects(ctx, contactSpec, options),
  readIds: (ctx) => readCrmObjectIds(ctx, contactSpec),
  get: (ctx, id) => getCrmObject(ctx, contactSpec, id),
  getMany: (ctx, ids) => getCrmObjects(ctx, contactSpec, ids),
  write: crmObjectWrite(contactSpec, toProperties),
  deletes: "api",
  webhooks: true,
  // HubSpot sets the id, the timestamps and `archived` (an archive is a delete).
  writableFields: Object.keys(propertyNames),
  // Email is how HubSpot and the host recognize a person; the lifecycle stage starts workflows
  // (sequences, lead assignment) in HubSpot: both go at once rather than with the next batch.
  criticalFields: ["email", "lifecycleStage"],
});

/** Outcome of `upsertContactsByEmail`. */
export interface ContactUpsertResult {
  /** Contacts written, as HubSpot returned them. */
  readonly contacts: ReadonlyArray<Contact>;
  /** Ids of the contacts the upsert created (the others were updated). */
  readonly createdIds: ReadonlyArray<string>;
  /** Inputs HubSpot refused (a 207's `errors[]`), e.g. an invalid property value. */
  readonly failures: ReadonlyArray<BatchFailure>;
}

/**
 * Creates or updates contacts by email: `POST /crm/v3/objects/contacts/batch/upsert` with
 * `idProperty: "email"`, in chunks of 100. A partial failure (207) does not throw: the
 * refused inputs are in `failures`. A whole-batch 400 throws InvalidRecord.
 *
 * @example
 * const { contacts, failures } = await upsertContactsByEmail(ctx, [{ email: "a@example.com", firstName: "Ada" }]);
 */
export const upsertContactsByEmail = async (
  ctx: HubSpotContext,
  records: ReadonlyArray<Partial<Contact> & { readonly email: string }>,
): Promise<ContactUpsertResult> => {
  const written: Array<Contact> = [];
  const createdIds: Array<string> = [];
  const failures: Array<BatchFailure> = [];
  for (let start = 0; start < records.length; start += batchMaxInputs) {
    const chunk = records.slice(start, start + batchMaxInputs);
    const outcome = await batchRequest(ctx, "contacts", "upsert", {
      inputs: chunk.map((record) => ({ id: record.email, idProperty: "email", properties: toProperties(record) })),
    });
    failures.push(...outcome.failures);
    for (const raw of outcome.results) {
      try {
        const contact = decodeRecord(contactSpec, raw);
        written.push(contact);
        if ((raw as { new?: unknown }).new === true) createdIds.push(contact.id);
      } catch (error) {
        if (!(error instanceof InvalidRecord)) throw error;
        failures.push({ category: "INVALID_RECORD", message: error.message, context: {} });
      }
    }
  }
  return { contacts: written, createdIds, failures };
};
