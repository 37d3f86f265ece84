import { defineEntity } from "@tandem/connector-sdk";
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
 * update and delete with `If-Match`. `toWire` turns normalized fields into the set's properties.
 */
export const companyEntity = <Rec extends { readonly id: string; readonly updatedAt: Date }, Encoded, Wire>(
  spec: EntitySpec<Rec, Encoded, Wire>,
  toWire: (fields: Partial<Rec>) => Record<string, unknown>,
) =>
  defineEntity<Rec, BusinessCentralConfig>({
    record: spec.record,
    primaryKey: (record) => record.id,
    updatedAt: (record) => record.updatedAt,
    read: (ctx, options) => readEntities(ctx, spec, options),
    readIds: (ctx) => readEntityIds(ctx, spec.entitySet),
    get: (ctx, id) => getEntity(ctx, spec, id),
    write: {
      create: (ctx, record) => createEntity(ctx, spec, toWire(record)),
      update: (ctx, id, changes) => updateEntity(ctx, spec, id, toWire(changes)),
      delete: (ctx, id) => deleteEntity(ctx, spec.entitySet, id),
    },
    deletes: "reconcile",
    webhooks: true,
  });
