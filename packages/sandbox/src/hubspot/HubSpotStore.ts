import type { FakeClock } from "./FakeClock.ts";

/** The CRM object types the fake serves (path segment of `/crm/v3/objects/{type}`). */
export type HubSpotObjectType = "contacts" | "companies";

export const hubSpotObjectTypes: ReadonlyArray<HubSpotObjectType> = ["contacts", "companies"];

/** One stored CRM object. Times are epoch milliseconds; property values are strings or null, as on the wire. */
export interface StoredHubSpotObject {
  readonly id: string;
  properties: Record<string, string | null>;
  readonly createdAt: number;
  updatedAt: number;
  archived: boolean;
  archivedAt: number | null;
}

/** A change the store made, as the webhook emitter turns it into HubSpot events. */
export interface HubSpotChange {
  readonly kind: "creation" | "propertyChange" | "deletion" | "merge" | "restore";
  readonly objectType: HubSpotObjectType;
  readonly objectId: string;
  readonly occurredAt: number;
  readonly propertyName?: string;
  readonly propertyValue?: string | null;
  /** For merges: the ids that were merged (the primary included) and the surviving id. */
  readonly mergedObjectIds?: ReadonlyArray<string>;
  readonly newObjectId?: string;
}

/** A failure in HubSpot's terms; the API layer turns the category into a status and error body. */
export interface HubSpotFailure {
  readonly category: "CONFLICT" | "VALIDATION_ERROR" | "OBJECT_NOT_FOUND";
  readonly message: string;
  readonly context?: Record<string, ReadonlyArray<string>>;
  readonly errors?: ReadonlyArray<Record<string, unknown>>;
}

export type StoreResult = { readonly object: StoredHubSpotObject } | { readonly failure: HubSpotFailure };

interface ObjectTypeSchema {
  /** Properties a client may write. */
  readonly writable: ReadonlyArray<string>;
  /** Properties HubSpot maintains; writing them is a validation error. */
  readonly readOnly: ReadonlyArray<string>;
  /** Returned when a read names no `properties`. */
  readonly defaults: ReadonlyArray<string>;
  /** The property search filters and sorts on for deltas. */
  readonly lastModified: string;
}

/** Contacts name their modification property `lastmodifieddate`, companies `hs_lastmodifieddate`. */
export const hubSpotObjectSchemas: Record<HubSpotObjectType, ObjectTypeSchema> = {
  contacts: {
    writable: ["email", "firstname", "lastname", "phone", "company", "lifecyclestage", "jobtitle"],
    readOnly: ["createdate", "lastmodifieddate", "hs_object_id"],
    defaults: ["firstname", "lastname", "email"],
    lastModified: "lastmodifieddate",
  },
  companies: {
    writable: ["name", "domain", "industry", "city", "phone"],
    readOnly: ["createdate", "hs_lastmodifieddate", "hs_object_id"],
    defaults: ["name", "domain"],
    lastModified: "hs_lastmodifieddate",
  },
};

const firstNames = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Frances", "Tony"];
const lastNames = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson", "Allen"];
const stages = ["subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer"];
const industries = ["COMPUTER_SOFTWARE", "RETAIL", "FINANCIAL_SERVICES", "HOSPITAL_HEALTH_CARE", "LOGISTICS"];
const cities = ["Lisbon", "Berlin", "Austin", "Osaka", "Nairobi", "Lyon", "Montreal"];

const emailPattern = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export interface SeedOptions {
  /** Gap between consecutive records' timestamps. Default 1,000 ms; 0 gives them all the same time. */
  readonly spacingMs?: number;
  /** Timestamp of the last seeded record. Default: the clock's now. Earlier records are older. */
  readonly endAt?: number;
}

/**
 * The fake's in-memory CRM: contacts and companies with HubSpot's timestamps,
 * archive semantics and unique contact emails. No HTTP here: the MSW handlers
 * and the loopback server both drive it through the API layer.
 */
export interface HubSpotStore {
  readonly clock: FakeClock;
  /** All objects of a type (archived included), in id order. */
  readonly all: (type: HubSpotObjectType) => ReadonlyArray<StoredHubSpotObject>;
  /**
   * Objects of a type (archived included) whose numeric id is at least `fromId` (every one when
   * undefined), in id order, read lazily from the store's id index: a caller that stops after a
   * page pays for the page, not for the store (list endpoints at a million objects).
   */
  readonly from: (type: HubSpotObjectType, fromId?: string) => Iterable<StoredHubSpotObject>;
  /** Like `from`, over the archived objects only (the archived listing, without stepping over live ones). */
  readonly fromArchived: (type: HubSpotObjectType, fromId?: string) => Iterable<StoredHubSpotObject>;
  /**
   * Every object of a type (archived included) in order of modification time, then numeric id:
   * search by modification time starts at its bound by binary search instead of filtering and
   * sorting the store (a delta's search, page after page). Rebuilt after changes, when read.
   */
  readonly byModification: (type: HubSpotObjectType) => ReadonlyArray<StoredHubSpotObject>;
  readonly get: (type: HubSpotObjectType, id: string) => StoredHubSpotObject | undefined;
  /** A live (not archived) contact with this email (case-insensitive). */
  readonly findByEmail: (email: string) => StoredHubSpotObject | undefined;
  readonly create: (type: HubSpotObjectType, properties: Record<string, unknown>) => StoreResult;
  /** Why `create` would refuse these properties (a validation error, an existing email), or undefined. */
  readonly refusal: (type: HubSpotObjectType, properties: Record<string, unknown>) => HubSpotFailure | undefined;
  readonly update: (type: HubSpotObjectType, id: string, properties: Record<string, unknown>) => StoreResult;
  /** Archives (HubSpot's delete). Archiving a missing or archived object is a no-op, as in HubSpot. */
  readonly archive: (type: HubSpotObjectType, id: string) => void;
  /** Brings an archived object back (HubSpot's restore from the recycle bin). */
  readonly restore: (type: HubSpotObjectType, id: string) => StoreResult;
  /** Merges `mergedId` into `primaryId`: the merged object disappears, the primary survives. */
  readonly merge: (type: HubSpotObjectType, primaryId: string, mergedId: string) => StoreResult;
  /** Adds `n` objects with generated properties and past timestamps (see SeedOptions). */
  readonly seed: (type: HubSpotObjectType, n: number, options?: SeedOptions) => ReadonlyArray<StoredHubSpotObject>;
  /** Listens to every change (creation, property change, archive, merge, restore). */
  readonly onChange: (listener: (change: HubSpotChange) => void) => () => void;
  /** Removes every object. */
  readonly clear: () => void;
}

/** Checks a write's properties as HubSpot does: unknown or read-only names and bad emails are refused. */
const validate = (type: HubSpotObjectType, properties: Record<string, unknown>): HubSpotFailure | undefined => {
  const schema = hubSpotObjectSchemas[type];
  const problems: Array<Record<string, unknown>> = [];
  for (const [name, value] of Object.entries(properties)) {
    if (schema.readOnly.includes(name)) {
      problems.push({
        isValid: false,
        message: `${name} is a read only property; its value cannot be set.`,
        error: "READ_ONLY_VALUE",
        name,
      });
    } else if (!schema.writable.includes(name)) {
      problems.push({
        isValid: false,
        message: `Property "${name}" does not exist`,
        error: "PROPERTY_DOESNT_EXIST",
        name,
      });
    } else if (value !== null && typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
      problems.push({
        isValid: false,
        message: `${JSON.stringify(value)} is not a valid value for ${name}`,
        error: "INVALID_OPTION",
        name,
      });
    } else if (name === "email" && typeof value === "string" && value !== "" && !emailPattern.test(value)) {
      problems.push({ isValid: false, message: `Email address ${value} is invalid`, error: "INVALID_EMAIL", name });
    }
  }
  if (problems.length === 0) return undefined;
  return {
    category: "VALIDATION_ERROR",
    message: `Property values were not valid: ${JSON.stringify(problems)}`,
    errors: problems.map((p) => ({ message: p.message, code: p.error, context: { propertyName: [p.name] } })),
  };
};

/** HubSpot stores every property value as a string; an empty string clears it. */
const normalizeValue = (value: unknown): string | null =>
  value === null || value === undefined || value === "" ? null : String(value);

/** Creates an empty store reading time from `clock`. Ids start at `firstId` (default 1001). */
export const createHubSpotStore = (clock: FakeClock, firstId = 1001): HubSpotStore => {
  const objects: Record<HubSpotObjectType, Map<string, StoredHubSpotObject>> = {
    contacts: new Map(),
    companies: new Map(),
  };
  // The same objects in ascending numeric id order. Ids only grow (`nextId`), so an insert
  // appends; only a merge removes from the middle. Lets `from` start at an id by binary search.
  const ordered: Record<HubSpotObjectType, Array<StoredHubSpotObject>> = { contacts: [], companies: [] };
  const listeners = new Set<(change: HubSpotChange) => void>();
  let nextId = firstId;
  // Indexes derived from `ordered`, rebuilt when read after a change (changes come in bursts,
  // reads page after page): archived objects by id, every object by modification time.
  const derived: Record<
    HubSpotObjectType,
    { archived?: Array<StoredHubSpotObject>; byModification?: Array<StoredHubSpotObject> }
  > = { contacts: {}, companies: {} };
  const changed = (type: HubSpotObjectType) => {
    derived[type] = {};
  };

  /** Index in `list` (ascending numeric ids) of the first object whose id is ≥ `id`. */
  const firstIdAtLeast = (list: ReadonlyArray<StoredHubSpotObject>, id: number) => {
    let low = 0;
    let high = list.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (Number(list[middle]!.id) < id) low = middle + 1;
      else high = middle;
    }
    return low;
  };

  /** Index in `ordered[type]` of the first object whose id is ≥ `id`. */
  const firstAtLeast = (type: HubSpotObjectType, id: number) => firstIdAtLeast(ordered[type], id);

  const emit = (change: HubSpotChange) => {
    for (const listener of listeners) listener(change);
  };

  const stamp = (type: HubSpotObjectType, object: StoredHubSpotObject, at: number) => {
    changed(type);
    object.updatedAt = at;
    object.properties[hubSpotObjectSchemas[type].lastModified] = new Date(at).toISOString();
  };

  const emailConflict = (properties: Record<string, unknown>, selfId?: string): HubSpotFailure | undefined => {
    if (typeof properties.email !== "string" || properties.email === "") return undefined;
    const existing = findByEmail(properties.email);
    if (existing === undefined || existing.id === selfId) return undefined;
    return { category: "CONFLICT", message: `Contact already exists. Existing ID: ${existing.id}` };
  };

  const findByEmail = (email: string) => {
    const wanted = email.toLowerCase();
    for (const object of objects.contacts.values()) {
      if (!object.archived && object.properties.email?.toLowerCase() === wanted) return object;
    }
    return undefined;
  };

  const insert = (type: HubSpotObjectType, properties: Record<string, unknown>, at: number) => {
    const id = String(nextId++);
    const object: StoredHubSpotObject = {
      id,
      properties: { hs_object_id: id, createdate: new Date(at).toISOString() },
      createdAt: at,
      updatedAt: at,
      archived: false,
      archivedAt: null,
    };
    for (const [name, value] of Object.entries(properties)) object.properties[name] = normalizeValue(value);
    stamp(type, object, at);
    objects[type].set(id, object);
    ordered[type].push(object);
    return object;
  };

  const store: HubSpotStore = {
    clock,
    all: (type) => [...ordered[type]],
    from: function* (type, fromId) {
      const list = ordered[type];
      for (let i = fromId === undefined ? 0 : firstAtLeast(type, Number(fromId)); i < list.length; i++) yield list[i]!;
    },
    fromArchived: function* (type, fromId) {
      derived[type].archived ??= ordered[type].filter((o) => o.archived);
      const list = derived[type].archived;
      for (let i = fromId === undefined ? 0 : firstIdAtLeast(list, Number(fromId)); i < list.length; i++) {
        yield list[i]!;
      }
    },
    byModification: (type) =>
      (derived[type].byModification ??= [...ordered[type]].sort(
        (a, b) => a.updatedAt - b.updatedAt || Number(a.id) - Number(b.id),
      )),
    get: (type, id) => objects[type].get(id),
    findByEmail,
    refusal: (type, properties) =>
      validate(type, properties) ?? (type === "contacts" ? emailConflict(properties) : undefined),
    create: (type, properties) => {
      const failure = store.refusal(type, properties);
      if (failure !== undefined) return { failure };
      const object = insert(type, properties, clock.now());
      emit({ kind: "creation", objectType: type, objectId: object.id, occurredAt: object.createdAt });
      return { object };
    },
    update: (type, id, properties) => {
      const object = objects[type].get(id);
      if (object === undefined || object.archived) {
        return { failure: { category: "OBJECT_NOT_FOUND", message: "resource not found", context: { id: [id] } } };
      }
      const failure = validate(type, properties) ?? (type === "contacts" ? emailConflict(properties, id) : undefined);
      if (failure !== undefined) return { failure };
      const at = clock.now();
      const changed: Array<[string, string | null]> = [];
      for (const [name, value] of Object.entries(properties)) {
        const next = normalizeValue(value);
        if ((object.properties[name] ?? null) !== next) changed.push([name, next]);
        object.properties[name] = next;
      }
      // HubSpot bumps the modification date on every accepted write, even one that changes nothing.
      stamp(type, object, at);
      for (const [propertyName, propertyValue] of changed) {
        emit({ kind: "propertyChange", objectType: type, objectId: id, occurredAt: at, propertyName, propertyValue });
      }
      return { object };
    },
    archive: (type, id) => {
      const object = objects[type].get(id);
      if (object === undefined || object.archived) return;
      const at = clock.now();
      object.archived = true;
      object.archivedAt = at;
      stamp(type, object, at);
      emit({ kind: "deletion", objectType: type, objectId: id, occurredAt: at });
    },
    restore: (type, id) => {
      const object = objects[type].get(id);
      if (object === undefined || !object.archived) {
        return {
          failure: { category: "OBJECT_NOT_FOUND", message: "no archived object with this id", context: { id: [id] } },
        };
      }
      const conflict = type === "contacts" ? emailConflict(object.properties, id) : undefined;
      if (conflict !== undefined) return { failure: conflict };
      const at = clock.now();
      object.archived = false;
      object.archivedAt = null;
      stamp(type, object, at);
      emit({ kind: "restore", objectType: type, objectId: id, occurredAt: at });
      return { object };
    },
    merge: (type, primaryId, mergedId) => {
      const primary = objects[type].get(primaryId);
      const merged = objects[type].get(mergedId);
      if (primary === undefined || merged === undefined || primary.archived || merged.archived) {
        return {
          failure: {
            category: "OBJECT_NOT_FOUND",
            message: "both objects must exist",
            context: { id: [primaryId, mergedId] },
          },
        };
      }
      const at = clock.now();
      // The primary keeps its values and fills its gaps from the merged object; the merged id is gone.
      for (const [name, value] of Object.entries(merged.properties)) {
        if ((primary.properties[name] ?? null) === null && value !== null) primary.properties[name] = value;
      }
      objects[type].delete(mergedId);
      ordered[type].splice(firstAtLeast(type, Number(mergedId)), 1);
      changed(type);
      stamp(type, primary, at);
      emit({
        kind: "merge",
        objectType: type,
        objectId: primaryId,
        occurredAt: at,
        mergedObjectIds: [primaryId, mergedId],
        newObjectId: primaryId,
      });
      return { object: primary };
    },
    seed: (type, n, options = {}) => {
      const spacing = options.spacingMs ?? 1_000;
      const endAt = options.endAt ?? clock.now();
      const created: Array<StoredHubSpotObject> = [];
      for (let i = 0; i < n; i++) {
        const at = endAt - (n - 1 - i) * spacing;
        const k = nextId;
        const properties: Record<string, string> =
          type === "contacts"
            ? {
                email: `contact${k}@example.com`,
                firstname: firstNames[k % firstNames.length]!,
                lastname: lastNames[k % lastNames.length]!,
                phone: `+1555${String(k).padStart(7, "0")}`,
                lifecyclestage: stages[k % stages.length]!,
              }
            : {
                name: `${lastNames[k % lastNames.length]} ${industries[k % industries.length]!.toLowerCase()} ${k}`,
                domain: `company${k}.example.com`,
                industry: industries[k % industries.length]!,
                city: cities[k % cities.length]!,
              };
        created.push(insert(type, properties, at));
      }
      return created;
    },
    onChange: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    clear: () => {
      objects.contacts.clear();
      objects.companies.clear();
      ordered.contacts.length = 0;
      ordered.companies.length = 0;
      changed("contacts");
      changed("companies");
    },
  };
  return store;
};
