import { defineEntity } from "@tandem/connector-sdk";
import { Schema } from "effect";
import { type CrmObjectSpec, getCrmObject, getCrmObjects, readCrmObjectIds, readCrmObjects } from "../client.ts";
import type { HubSpotConfig } from "../config.ts";
import { crmObjectWrite } from "../crmWrites.ts";
import type { CrmObjectWire } from "../wire.ts";

/**
 * A HubSpot company, normalized. `updatedAt` is HubSpot's `hs_lastmodifieddate`; `archived`
 * records come from the archived listing and mean "deleted in HubSpot".
 */
export const Company = Schema.Struct({
  /** HubSpot's numeric object id, as a string. */
  id: Schema.String.pipe(Schema.pattern(/^\d+$/)),
  name: Schema.NullOr(Schema.String),
  domain: Schema.NullOr(Schema.String),
  industry: Schema.NullOr(Schema.String),
  city: Schema.NullOr(Schema.String),
  phone: Schema.NullOr(Schema.String),
  createdAt: Schema.Date,
  updatedAt: Schema.Date,
  archived: Schema.Boolean,
  archivedAt: Schema.NullOr(Schema.Date),
});
export type Company = typeof Company.Type;

/** Normalized field -> HubSpot property (the writable ones). */
const propertyNames = {
  name: "name",
  domain: "domain",
  industry: "industry",
  city: "city",
  phone: "phone",
} as const satisfies Partial<Record<keyof Company, string>>;

const companySpec: CrmObjectSpec<Company, typeof Company.Encoded> = {
  objectType: "companies",
  // Companies name it differently from contacts (`lastmodifieddate`).
  lastModifiedProperty: "hs_lastmodifieddate",
  properties: [...Object.values(propertyNames), "createdate", "hs_lastmodifieddate"],
  record: Company,
  toRecord: (wire: CrmObjectWire) => ({
    id: wire.id,
    name: wire.properties.name ?? null,
    domain: wire.properties.domain ?? null,
    industry: wire.properties.industry ?? null,
    city: wire.properties.city ?? null,
    phone: wire.properties.phone ?? null,
    createdAt: wire.createdAt,
    updatedAt: wire.updatedAt,
    archived: wire.archived,
    archivedAt: wire.archivedAt ?? null,
  }),
};

/** Normalized changes -> HubSpot properties; null clears a property (HubSpot takes ""). */
const toProperties = (changes: Partial<Company>): Record<string, string> => {
  const properties: Record<string, string> = {};
  for (const [field, property] of Object.entries(propertyNames)) {
    const value = changes[field as keyof typeof propertyNames];
    if (value !== undefined) properties[property] = value ?? "";
  }
  return properties;
};

/**
 * Companies: `/crm/v3/objects/companies`. Same shape as contacts, but deltas search
 * `hs_lastmodifieddate` and there is no unique email (no upsert by email).
 */
export const companies = defineEntity<Company, HubSpotConfig>({
  record: Company,
  primaryKey: (company) => company.id,
  updatedAt: (company) => company.updatedAt,
  read: (ctx, options) => readCrmObjects(ctx, companySpec, options),
  readIds: (ctx) => readCrmObjectIds(ctx, companySpec),
  get: (ctx, id) => getCrmObject(ctx, companySpec, id),
  getMany: (ctx, ids) => getCrmObjects(ctx, companySpec, ids),
  write: crmObjectWrite(companySpec, toProperties),
  deletes: "api",
  webhooks: true,
  // HubSpot sets the id, the timestamps and `archived` (an archive is a delete).
  writableFields: Object.keys(propertyNames),
});
