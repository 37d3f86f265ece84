import { randomUUID } from "node:crypto";
import type { FakeClock } from "../hubspot/FakeClock.ts";

/** The entity sets the fake serves (`companies({id})/{entitySet}`). */
export type BusinessCentralEntitySet = "items" | "customers";

export const businessCentralEntitySets: ReadonlyArray<BusinessCentralEntitySet> = ["items", "customers"];

/** A field value as BC's JSON carries it. */
export type BusinessCentralValue = string | number | boolean;

/**
 * One stored entity. `fields` holds every property but `id`, `lastModifiedDateTime` and
 * `@odata.etag`, which the store maintains; times are epoch milliseconds.
 */
export interface StoredBusinessCentralRecord {
  readonly id: string;
  fields: Record<string, BusinessCentralValue>;
  lastModifiedAt: number;
  /** Bumped on every change; the etag is derived from it. */
  version: number;
}

/** A change the store made, as subscriptions turn it into notifications. */
export interface BusinessCentralChange {
  readonly entitySet: BusinessCentralEntitySet;
  readonly id: string;
  readonly changeType: "created" | "updated" | "deleted";
  readonly at: number;
}

/** A refusal in BC's terms; the API layer answers it as `{ error: { code, message } }` with `status`. */
export interface BusinessCentralFailure {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

export type BusinessCentralStoreResult =
  | { readonly record: StoredBusinessCentralRecord }
  | { readonly failure: BusinessCentralFailure };

type FieldType =
  | { readonly kind: "string"; readonly maxLength: number }
  | { readonly kind: "number" }
  | { readonly kind: "boolean" }
  | { readonly kind: "enum"; readonly values: ReadonlyArray<string> };

interface EntitySetSchema {
  /** The entity name in BC's messages ("Item", "Customer"). */
  readonly entityName: string;
  readonly writable: Readonly<Record<string, FieldType>>;
  /** Properties BC computes; writing them is refused. */
  readonly readOnly: ReadonlyArray<string>;
  /** Values of a new entity for the properties a POST leaves out. */
  readonly defaults: Readonly<Record<string, BusinessCentralValue>>;
  /** Prefix of the number series new entities are numbered from. */
  readonly numberPrefix: string;
}

/**
 * The properties the fake models, after the v2.0 item and customer resource types:
 * https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/resources/dynamics_item
 * https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/resources/dynamics_customer
 * Empty strings are how BC says "no value": it never sends null for these properties.
 */
export const businessCentralSchemas: Record<BusinessCentralEntitySet, EntitySetSchema> = {
  items: {
    entityName: "Item",
    writable: {
      number: { kind: "string", maxLength: 20 },
      displayName: { kind: "string", maxLength: 100 },
      displayName2: { kind: "string", maxLength: 50 },
      type: { kind: "enum", values: ["Inventory", "Service", "Non-Inventory"] },
      blocked: { kind: "boolean" },
      gtin: { kind: "string", maxLength: 14 },
      unitPrice: { kind: "number" },
      unitCost: { kind: "number" },
      baseUnitOfMeasureCode: { kind: "string", maxLength: 10 },
    },
    readOnly: ["id", "inventory", "lastModifiedDateTime"],
    defaults: {
      displayName: "",
      displayName2: "",
      type: "Inventory",
      blocked: false,
      gtin: "",
      inventory: 0,
      unitPrice: 0,
      unitCost: 0,
      baseUnitOfMeasureCode: "PCS",
    },
    numberPrefix: "IT",
  },
  customers: {
    entityName: "Customer",
    writable: {
      number: { kind: "string", maxLength: 20 },
      displayName: { kind: "string", maxLength: 100 },
      email: { kind: "string", maxLength: 80 },
      phoneNumber: { kind: "string", maxLength: 30 },
      blocked: { kind: "enum", values: [" ", "Ship", "Invoice", "All"] },
    },
    readOnly: ["id", "lastModifiedDateTime"],
    defaults: { displayName: "", email: "", phoneNumber: "", blocked: " " },
    numberPrefix: "C",
  },
};

export interface BusinessCentralSeedOptions {
  /** Gap between consecutive records' modification times. Default 1,000 ms. */
  readonly spacingMs?: number;
  /** Modification time of the last seeded record. Default: the clock's now. */
  readonly endAt?: number;
}

/**
 * The fake's in-memory company: items and customers with BC's ids (GUIDs), numbers from a
 * number series, modification times and versions (etags). No HTTP here.
 */
export interface BusinessCentralStore {
  readonly clock: FakeClock;
  /** Every record of an entity set, in number order (BC's default order: the primary key). */
  readonly all: (entitySet: BusinessCentralEntitySet) => ReadonlyArray<StoredBusinessCentralRecord>;
  readonly get: (entitySet: BusinessCentralEntitySet, id: string) => StoredBusinessCentralRecord | undefined;
  readonly create: (entitySet: BusinessCentralEntitySet, fields: Record<string, unknown>) => BusinessCentralStoreResult;
  readonly update: (
    entitySet: BusinessCentralEntitySet,
    id: string,
    fields: Record<string, unknown>,
  ) => BusinessCentralStoreResult;
  /** Deletes a record; false when there was none. */
  readonly remove: (entitySet: BusinessCentralEntitySet, id: string) => boolean;
  /** Sets a computed property (e.g. an item's `inventory`, which item journals move) without validation. */
  readonly setComputed: (
    entitySet: BusinessCentralEntitySet,
    id: string,
    fields: Record<string, BusinessCentralValue>,
  ) => void;
  /** Adds `n` records with generated fields and past, ascending modification times. */
  readonly seed: (
    entitySet: BusinessCentralEntitySet,
    n: number,
    options?: BusinessCentralSeedOptions,
  ) => ReadonlyArray<StoredBusinessCentralRecord>;
  readonly onChange: (listener: (change: BusinessCentralChange) => void) => () => void;
  readonly clear: () => void;
}

const fail = (status: number, code: string, message: string): { failure: BusinessCentralFailure } => ({
  failure: { status, code, message },
});

/** Checks a write as BC does: unknown or read-only properties and values of the wrong type are refused. */
const validate = (
  entitySet: BusinessCentralEntitySet,
  fields: Record<string, unknown>,
): BusinessCentralFailure | undefined => {
  const schema = businessCentralSchemas[entitySet];
  for (const [name, value] of Object.entries(fields)) {
    if (schema.readOnly.includes(name)) {
      return fail(400, "BadRequest", `The property '${name}' is read-only and cannot be modified.`).failure;
    }
    const type = schema.writable[name];
    if (type === undefined) {
      return fail(
        400,
        "BadRequest",
        `The property '${name}' does not exist on type 'Microsoft.NAV.${schema.entityName.toLowerCase()}'. Make sure to only use property names that are defined by the type.`,
      ).failure;
    }
    const wrongType = () =>
      fail(
        400,
        "BadRequest",
        `Cannot convert the literal '${JSON.stringify(value)}' to the expected type of '${name}'.`,
      ).failure;
    switch (type.kind) {
      case "string":
        if (typeof value !== "string") return wrongType();
        if (value.length > type.maxLength) {
          return fail(
            400,
            "BadRequest_InvalidRequestBody",
            `The length of the string is ${value.length}, but it must be less than or equal to ${type.maxLength} characters. Value: ${value}`,
          ).failure;
        }
        break;
      case "number":
        if (typeof value !== "number" || !Number.isFinite(value)) return wrongType();
        break;
      case "boolean":
        if (typeof value !== "boolean") return wrongType();
        break;
      case "enum":
        if (typeof value !== "string" || !type.values.includes(value)) return wrongType();
        break;
    }
  }
  return undefined;
};

const names = ["Bicycle", "Touring Frame", "Front Hub", "Rear Hub", "Chain", "Saddle", "Pedal", "Spoke", "Rim", "Tire"];
const colors = ["Red", "Blue", "Black", "Silver", "Green"];
const companies = ["Adatum", "Trey Research", "School of Fine Art", "Alpine Ski House", "Relecloud", "Coho Winery"];

/** Creates an empty store reading time from `clock`. */
export const createBusinessCentralStore = (clock: FakeClock): BusinessCentralStore => {
  const records: Record<BusinessCentralEntitySet, Map<string, StoredBusinessCentralRecord>> = {
    items: new Map(),
    customers: new Map(),
  };
  const series: Record<BusinessCentralEntitySet, number> = { items: 0, customers: 0 };
  const listeners = new Set<(change: BusinessCentralChange) => void>();
  const emit = (change: BusinessCentralChange) => {
    for (const listener of listeners) listener(change);
  };

  const numberTaken = (entitySet: BusinessCentralEntitySet, number: unknown, selfId?: string) =>
    [...records[entitySet].values()].some((r) => r.fields.number === number && r.id !== selfId);

  const nextNumber = (entitySet: BusinessCentralEntitySet) => {
    const prefix = businessCentralSchemas[entitySet].numberPrefix;
    let number: string;
    do number = `${prefix}${String(++series[entitySet]).padStart(6, "0")}`;
    while (numberTaken(entitySet, number));
    return number;
  };

  const insert = (entitySet: BusinessCentralEntitySet, fields: Record<string, unknown>, at: number) => {
    const schema = businessCentralSchemas[entitySet];
    const record: StoredBusinessCentralRecord = {
      id: randomUUID(),
      fields: {
        ...schema.defaults,
        ...(fields as Record<string, BusinessCentralValue>),
        number: typeof fields.number === "string" && fields.number !== "" ? fields.number : nextNumber(entitySet),
      },
      lastModifiedAt: at,
      version: 1,
    };
    records[entitySet].set(record.id, record);
    return record;
  };

  const store: BusinessCentralStore = {
    clock,
    all: (entitySet) =>
      [...records[entitySet].values()].sort((a, b) =>
        String(a.fields.number) < String(b.fields.number)
          ? -1
          : String(a.fields.number) > String(b.fields.number)
            ? 1
            : 0,
      ),
    get: (entitySet, id) => records[entitySet].get(id.toLowerCase()),
    create: (entitySet, fields) => {
      const invalid = validate(entitySet, fields);
      if (invalid !== undefined) return { failure: invalid };
      if (fields.number !== undefined && numberTaken(entitySet, fields.number)) {
        return fail(
          400,
          "Internal_EntityWithSameKeyExists",
          `The record already exists. Identification fields and values: No.='${String(fields.number)}'`,
        );
      }
      const record = insert(entitySet, fields, clock.now());
      emit({ entitySet, id: record.id, changeType: "created", at: record.lastModifiedAt });
      return { record };
    },
    update: (entitySet, id, fields) => {
      const record = store.get(entitySet, id);
      if (record === undefined) {
        return fail(
          404,
          "Internal_RecordNotFound",
          `The ${businessCentralSchemas[entitySet].entityName} does not exist. Identification fields and values: Id='${id}'`,
        );
      }
      const invalid = validate(entitySet, fields);
      if (invalid !== undefined) return { failure: invalid };
      if (fields.number !== undefined && numberTaken(entitySet, fields.number, record.id)) {
        return fail(
          400,
          "Internal_EntityWithSameKeyExists",
          `The record already exists. Identification fields and values: No.='${String(fields.number)}'`,
        );
      }
      record.fields = { ...record.fields, ...(fields as Record<string, BusinessCentralValue>) };
      record.lastModifiedAt = clock.now();
      record.version++;
      emit({ entitySet, id: record.id, changeType: "updated", at: record.lastModifiedAt });
      return { record };
    },
    remove: (entitySet, id) => {
      const record = store.get(entitySet, id);
      if (record === undefined) return false;
      records[entitySet].delete(record.id);
      emit({ entitySet, id: record.id, changeType: "deleted", at: clock.now() });
      return true;
    },
    setComputed: (entitySet, id, fields) => {
      const record = store.get(entitySet, id);
      if (record === undefined) throw new Error(`no ${entitySet} ${id}`);
      record.fields = { ...record.fields, ...fields };
      record.lastModifiedAt = clock.now();
      record.version++;
      emit({ entitySet, id: record.id, changeType: "updated", at: record.lastModifiedAt });
    },
    seed: (entitySet, n, options = {}) => {
      const spacing = options.spacingMs ?? 1_000;
      const end = options.endAt ?? clock.now();
      const seeded: Array<StoredBusinessCentralRecord> = [];
      for (let i = 0; i < n; i++) {
        const k = series[entitySet] + 1;
        const fields: Record<string, BusinessCentralValue> =
          entitySet === "items"
            ? {
                displayName: `${names[k % names.length]} ${colors[k % colors.length]} ${k}`,
                type: k % 7 === 0 ? "Service" : "Inventory",
                gtin: String(4_000_000_000_000 + k),
                unitPrice: ((k * 37) % 1000) + 0.99,
                unitCost: (k * 23) % 700,
                inventory: (k * 13) % 250,
              }
            : {
                displayName: `${companies[k % companies.length]} ${k}`,
                email: `buyer${k}@example.com`,
                phoneNumber: `+1-425-555-${String(k % 10_000).padStart(4, "0")}`,
              };
        seeded.push(insert(entitySet, fields, end - (n - 1 - i) * spacing));
      }
      return seeded;
    },
    onChange: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    clear: () => {
      records.items.clear();
      records.customers.clear();
      series.items = 0;
      series.customers = 0;
    },
  };
  return store;
};
