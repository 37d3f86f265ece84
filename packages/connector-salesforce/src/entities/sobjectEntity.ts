import { defineEntity } from "@tandem/connector-sdk";
import {
  createSObject,
  deleteSObject,
  getSObject,
  getSObjects,
  readSObjectIds,
  readSObjects,
  type SObjectSpec,
  updateSObject,
} from "../client.ts";
import type { SalesforceConfig } from "../config.ts";
import { collectionMax, createSObjects, deleteSObjects, updateSObjects } from "../sobjectWrites.ts";

/**
 * An entity over one sObject, read and written the same way for every type: full reads query
 * live rows by SystemModstamp; deltas query the recycle bin too (`queryAll`), reporting deletions
 * of the last 15 days; Outbound Messages for the type parse to `updated` events; writes create,
 * update and delete (to the recycle bin), one at a time or in batches (see ../sobjectWrites.ts).
 * A record's version is its LastModifiedDate (`lastModifiedAt`): updates with `ifVersion` send it
 * as `If-Unmodified-Since`. `writable` maps normalized fields to the sObject's fields; a local
 * change to any other field is refused when it is submitted (`writableFields`).
 */
export const sobjectEntity = <
  Rec extends { readonly id: string; readonly updatedAt: Date; readonly lastModifiedAt: Date },
  Encoded,
>(
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
    version: (record) => record.lastModifiedAt.toISOString(),
    read: (ctx, options) => readSObjects(ctx, spec, options),
    readIds: (ctx) => readSObjectIds(ctx, spec),
    get: (ctx, id) => getSObject(ctx, spec, id),
    getMany: (ctx, ids) => getSObjects(ctx, spec, ids),
    write: {
      create: (ctx, record) => createSObject(ctx, spec, toFields(record)),
      update: (ctx, id, changes, options) => updateSObject(ctx, spec, id, toFields(changes), options?.ifVersion),
      delete: async (ctx, id, options) => {
        if (options?.ifVersion === undefined) return deleteSObject(ctx, spec, id);
        // DELETE takes no conditional header: the batch way retrieves and compares first.
        const [result] = await deleteSObjects(ctx, spec, [{ id, ifVersion: options.ifVersion }]);
        if (result !== undefined && !result.ok) throw result.error;
      },
      conditional: true,
      batch: {
        maxPerRequest: collectionMax,
        create: (ctx, inputs) =>
          createSObjects(
            ctx,
            spec,
            inputs.map((input) => toFields(input.record)),
          ),
        update: (ctx, inputs) =>
          updateSObjects(
            ctx,
            spec,
            inputs.map((input) => ({ id: input.id, fields: toFields(input.changes), ifVersion: input.ifVersion })),
          ),
        delete: (ctx, inputs) => deleteSObjects(ctx, spec, inputs),
      },
    },
    deletes: "api",
    webhooks: true,
    // Salesforce sets the id and the timestamps; only these fields are sent.
    writableFields: Object.keys(writable),
  });
};
