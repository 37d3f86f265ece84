import { defineEntity } from "@tandem/connector-sdk";
import { batchMax, createEntities, deleteEntities, updateEntities } from "../batchWrites.ts";
import {
  createEntity,
  deleteEntity,
  type EntitySpec,
  getEntity,
  readEntities,
  readEntityIds,
  updateEntity,
} from "../client.ts";
import type { BusinessCentralConfig } from "../config.ts";

/**
 * An entity set of one company (`companies({id})/<entitySet>`), read and written the same way for
 * every set: full reads page the collection, deltas filter on `lastModifiedDateTime`, deletions
 * come from reconciliation (BC keeps no tombstones) and `deleted` notifications; writes create,
 * update and delete with `If-Match`, one at a time or in `$batch` requests (see ../batchWrites.ts).
 * A record's version is its etag: a write with `ifVersion` sends it as `If-Match`, so an entity
 * changed since is a version Conflict. `toWire` turns normalized fields into the set's properties;
 * `writable` names the fields BC lets an API client set: a local change to any other (the id, the
 * etag, the modification time, a computed property) is refused when it is submitted, and a
 * resolved conflict's whole record pushes only these.
 */
export const companyEntity = <
  Rec extends { readonly id: string; readonly updatedAt: Date; readonly etag: string },
  Encoded,
  Wire,
>(
  spec: EntitySpec<Rec, Encoded, Wire>,
  toWire: (fields: Partial<Rec>) => Record<string, unknown>,
  writable: ReadonlyArray<keyof Rec & string>,
) =>
  defineEntity<Rec, BusinessCentralConfig>({
    record: spec.record,
    primaryKey: (record) => record.id,
    updatedAt: (record) => record.updatedAt,
    version: (record) => record.etag,
    read: (ctx, options) => readEntities(ctx, spec, options),
    readIds: (ctx) => readEntityIds(ctx, spec.entitySet),
    get: (ctx, id) => getEntity(ctx, spec, id),
    write: {
      create: (ctx, record) => createEntity(ctx, spec, toWire(record)),
      update: (ctx, id, changes, options) => updateEntity(ctx, spec, id, toWire(changes), options?.ifVersion),
      delete: (ctx, id, options) => deleteEntity(ctx, spec.entitySet, id, options?.ifVersion),
      conditional: true,
      batch: {
        maxPerRequest: batchMax,
        create: (ctx, inputs) =>
          createEntities(
            ctx,
            spec,
            inputs.map((input) => toWire(input.record)),
          ),
        update: (ctx, inputs) =>
          updateEntities(
            ctx,
            spec,
            inputs.map((input) => ({ id: input.id, body: toWire(input.changes), ifVersion: input.ifVersion })),
          ),
        delete: (ctx, inputs) => deleteEntities(ctx, spec, inputs),
      },
    },
    deletes: "reconcile",
    webhooks: true,
    writableFields: writable,
  });
