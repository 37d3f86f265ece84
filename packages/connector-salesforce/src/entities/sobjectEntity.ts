import { defineEntity } from "@tandem/connector-sdk";
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

/**
 * An entity over one sObject, read and written the same way for every type: full reads query
 * live rows by SystemModstamp; deltas query the recycle bin too (`queryAll`), reporting deletions
 * of the last 15 days; Outbound Messages for the type parse to `updated` events; writes create,
 * update and delete (to the recycle bin). `writable` maps normalized fields to the sObject's
 * fields; a local change to any other field is refused when it is submitted (`writableFields`).
 */
export const sobjectEntity = <Rec extends { readonly id: string; readonly updatedAt: Date }, Encoded>(
  spec: SObjectSpec<Rec, Encoded>,
  writable: Partial<Record<keyof Rec, string>>,
) => {
  /** Normalized changes -> sObject fields; null clears a field (Salesforce takes JSON null). */
  const toFields = (changes: Partial<Rec>): Record<string, string | null> => {
    const fields: Record<string, string | null> = {};
    for (const [field, name] of Object.entries(writable) as Array<[keyof Rec, string]>) {
      const value = changes[field];
      if (value !== undefined) fields[name] = value as string | null;
    }
    return fields;
  };
  return defineEntity<Rec, SalesforceConfig>({
    record: spec.record,
    primaryKey: (record) => record.id,
    updatedAt: (record) => record.updatedAt,
    read: (ctx, options) => readSObjects(ctx, spec, options),
    readIds: (ctx) => readSObjectIds(ctx, spec),
    get: (ctx, id) => getSObject(ctx, spec, id),
    write: {
      create: (ctx, record) => createSObject(ctx, spec, toFields(record)),
      update: (ctx, id, changes) => updateSObject(ctx, spec, id, toFields(changes)),
      delete: (ctx, id) => deleteSObject(ctx, spec, id),
    },
    deletes: "api",
    webhooks: true,
    // Salesforce sets the id and the timestamps; only these fields are sent.
    writableFields: Object.keys(writable),
  });
};
