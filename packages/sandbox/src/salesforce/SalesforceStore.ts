import type { FakeClock } from "../hubspot/FakeClock.ts";

/** The sObjects the fake serves. */
export type SalesforceObjectType = "Contact" | "Account";

export const salesforceObjectTypes: ReadonlyArray<SalesforceObjectType> = ["Contact", "Account"];

/** A field value as the REST API carries it. */
export type SalesforceFieldValue = string | boolean | null;

/**
 * One stored record. Times are epoch milliseconds. `fields` holds the writable fields;
 * the system fields (Id, IsDeleted, CreatedDate, LastModifiedDate, SystemModstamp) live beside them.
 */
export interface StoredSalesforceRecord {
  readonly Id: string;
  readonly type: SalesforceObjectType;
  fields: Record<string, SalesforceFieldValue>;
  readonly CreatedDate: number;
  /** Changes on user edits only. */
  LastModifiedDate: number;
  /** Changes on every write, user or system (rollups, automation, deletion, undeletion). */
  SystemModstamp: number;
  /** In the recycle bin (deleted, restorable for 15 days). */
  IsDeleted: boolean;
  deletedAt: number | null;
}

/** One entry of a failed write, as the REST API reports it: `[{ message, errorCode, fields? }]`. */
export interface SalesforceError {
  readonly message: string;
  readonly errorCode: string;
  readonly fields?: ReadonlyArray<string>;
  /** `DUPLICATES_DETECTED` carries the matching records. */
  readonly duplicateResult?: Record<string, unknown>;
}

export type SalesforceWriteResult =
  | { readonly record: StoredSalesforceRecord }
  | { readonly status: 400 | 404; readonly errors: ReadonlyArray<SalesforceError> };

interface ObjectSchema {
  /** The id's key prefix: 003 for Contact, 001 for Account. */
  readonly keyPrefix: string;
  readonly writable: ReadonlyArray<string>;
  readonly required: ReadonlyArray<string>;
}

/** The system fields every object has; never writable. */
export const salesforceSystemFields = ["Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp"] as const;

/** Datetime fields (formatted `2021-12-02T18:25:26.000+0000` on the wire; comparable in SOQL). */
export const salesforceDateTimeFields = ["CreatedDate", "LastModifiedDate", "SystemModstamp"] as const;

export const salesforceObjectSchemas: Record<SalesforceObjectType, ObjectSchema> = {
  Contact: {
    keyPrefix: "003",
    writable: ["FirstName", "LastName", "Email", "Phone", "AccountId"],
    required: ["LastName"],
  },
  Account: { keyPrefix: "001", writable: ["Name", "Website", "Phone", "Industry"], required: ["Name"] },
};

/** Every field a query may name for a type, by its canonical spelling. */
export const salesforceFieldsOf = (type: SalesforceObjectType): ReadonlyArray<string> => [
  ...salesforceSystemFields,
  ...salesforceObjectSchemas[type].writable,
];

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const checksumAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/**
 * The 18-character form of a 15-character id: three checksum characters, one per five-character
 * chunk, whose bits say which characters of the chunk are upper case. Lets case-insensitive
 * systems tell ids apart (what the CASESAFEID() formula function returns).
 */
export const salesforceId18 = (id15: string): string => {
  let suffix = "";
  for (let chunk = 0; chunk < 3; chunk++) {
    let bits = 0;
    for (let i = 0; i < 5; i++) {
      const c = id15[chunk * 5 + i]!;
      if (c >= "A" && c <= "Z") bits |= 1 << i;
    }
    suffix += checksumAlphabet[bits];
  }
  return id15 + suffix;
};

/** An 18-character id: key prefix, a two-character pod, a reserved 0, nine base-62 digits of `n`, checksum. */
export const salesforceRecordId = (prefix: string, n: number): string => {
  let digits = "";
  for (let rest = n; digits.length < 9; rest = Math.floor(rest / 62)) digits = base62[rest % 62] + digits;
  return salesforceId18(`${prefix}5g0${digits}`);
};

const emailPattern = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

const firstNames = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Frances", "Tony"];
const lastNames = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson", "Allen"];
const industries = ["Technology", "Retail", "Banking", "Healthcare", "Transportation"];

export interface SalesforceSeedOptions {
  /** Gap between consecutive records' timestamps. Default 1,000 ms; 0 gives them all the same time. */
  readonly spacingMs?: number;
  /** Timestamp of the last seeded record. Default: the clock's now. Earlier records are older. */
  readonly endAt?: number;
}

/**
 * The fake's org: Contacts and Accounts with Salesforce's system fields, recycle-bin deletes
 * and field validation. No HTTP here: the API layer drives it.
 */
export interface SalesforceStore {
  readonly clock: FakeClock;
  /** All records of a type, deleted ones included, in id order. */
  readonly all: (type: SalesforceObjectType) => ReadonlyArray<StoredSalesforceRecord>;
  /** A record by its 15- or 18-character id (deleted ones included). */
  readonly get: (type: SalesforceObjectType, id: string) => StoredSalesforceRecord | undefined;
  readonly create: (type: SalesforceObjectType, fields: Record<string, unknown>) => SalesforceWriteResult;
  readonly update: (type: SalesforceObjectType, id: string, fields: Record<string, unknown>) => SalesforceWriteResult;
  /** Moves a record to the recycle bin: IsDeleted, SystemModstamp bumped. */
  readonly delete: (type: SalesforceObjectType, id: string) => SalesforceWriteResult;
  /** Restores a record from the recycle bin. */
  readonly undelete: (type: SalesforceObjectType, id: string) => SalesforceWriteResult;
  /**
   * A system-side change (a rollup recalculation, a trigger, a data migration): SystemModstamp
   * moves, LastModifiedDate does not. Why deltas filter on SystemModstamp.
   */
  readonly touch: (type: SalesforceObjectType, id: string) => void;
  /** Adds `n` records with generated fields and past timestamps (see SalesforceSeedOptions). */
  readonly seed: (
    type: SalesforceObjectType,
    n: number,
    options?: SalesforceSeedOptions,
  ) => ReadonlyArray<StoredSalesforceRecord>;
  /** Duplicate rule on Contact.Email (off by default, as a rule that only alerts would be). */
  duplicateRuleOnEmail: boolean;
  readonly clear: () => void;
}

/** Creates an empty store on `clock`. */
export const createSalesforceStore = (clock: FakeClock): SalesforceStore => {
  const records: Record<SalesforceObjectType, Map<string, StoredSalesforceRecord>> = {
    Contact: new Map(),
    Account: new Map(),
  };
  let counter = 1;

  const find = (type: SalesforceObjectType, id: string) => {
    if (id.length === 18) return records[type].get(id);
    if (id.length === 15) return records[type].get(salesforceId18(id));
    return undefined;
  };

  const notFound = (): SalesforceWriteResult => ({
    status: 404,
    errors: [{ message: "The requested resource does not exist", errorCode: "NOT_FOUND" }],
  });
  const isDeleted = (): SalesforceWriteResult => ({
    status: 404,
    errors: [{ message: "entity is deleted", errorCode: "ENTITY_IS_DELETED" }],
  });

  /** What Salesforce checks on a write, in its words. */
  const validate = (
    type: SalesforceObjectType,
    fields: Record<string, unknown>,
    current: StoredSalesforceRecord | undefined,
  ): ReadonlyArray<SalesforceError> => {
    const schema = salesforceObjectSchemas[type];
    const readOnly = Object.keys(fields).filter((name) =>
      (salesforceSystemFields as ReadonlyArray<string>).some((f) => f.toLowerCase() === name.toLowerCase()),
    );
    if (readOnly.length > 0) {
      return [
        {
          message: `Unable to create/update fields: ${readOnly.join(", ")}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.`,
          errorCode: "INVALID_FIELD_FOR_INSERT_UPDATE",
          fields: readOnly,
        },
      ];
    }
    for (const [name, value] of Object.entries(fields)) {
      if (!schema.writable.includes(name)) {
        return [{ message: `No such column '${name}' on sobject of type ${type}`, errorCode: "INVALID_FIELD" }];
      }
      if (value !== null && typeof value !== "string") {
        return [
          {
            message: `Cannot deserialize instance of string from ${Array.isArray(value) ? "START_ARRAY" : typeof value === "object" ? "START_OBJECT" : "VALUE"} value ${JSON.stringify(value)} at [line:1, column:1]`,
            errorCode: "JSON_PARSER_ERROR",
          },
        ];
      }
    }
    const merged = { ...current?.fields, ...fields } as Record<string, string | null>;
    const missing = schema.required.filter(
      (name) => merged[name] === undefined || merged[name] === null || merged[name] === "",
    );
    if (missing.length > 0) {
      return [
        {
          message: `Required fields are missing: [${missing.join(", ")}]`,
          errorCode: "REQUIRED_FIELD_MISSING",
          fields: missing,
        },
      ];
    }
    const email = fields.Email;
    if (typeof email === "string" && email !== "" && !emailPattern.test(email)) {
      return [
        { message: `Email: invalid email address: ${email}`, errorCode: "INVALID_EMAIL_ADDRESS", fields: ["Email"] },
      ];
    }
    const accountId = fields.AccountId;
    if (typeof accountId === "string" && accountId !== "") {
      const account = find("Account", accountId);
      if (account === undefined || account.IsDeleted) {
        return [
          {
            message: `Account ID: id value of incorrect type: ${accountId}`,
            errorCode: "INVALID_CROSS_REFERENCE_KEY",
            fields: ["AccountId"],
          },
        ];
      }
    }
    if (type === "Contact" && store.duplicateRuleOnEmail && typeof email === "string" && email !== "") {
      const duplicate = [...records.Contact.values()].find(
        (r) =>
          !r.IsDeleted && r.Id !== current?.Id && String(r.fields.Email ?? "").toLowerCase() === email.toLowerCase(),
      );
      if (duplicate !== undefined) {
        return [
          {
            message: "Use one of these records?",
            errorCode: "DUPLICATES_DETECTED",
            fields: [],
            duplicateResult: {
              allowSave: false,
              duplicateRule: "Standard_Contact_Duplicate_Rule",
              duplicateRuleEntityType: "Contact",
              errorMessage: "Use one of these records?",
              matchResults: [
                {
                  entityType: "Contact",
                  matchEngine: "FuzzyMatchEngine",
                  matchRecords: [
                    { matchConfidence: 100, record: { attributes: { type: "Contact" }, Id: duplicate.Id } },
                  ],
                  rule: "Standard_Contact_Match_Rule_v1_1",
                  size: 1,
                  success: true,
                },
              ],
            },
          },
        ];
      }
    }
    return [];
  };

  const insert = (type: SalesforceObjectType, fields: Record<string, SalesforceFieldValue>, at: number) => {
    const record: StoredSalesforceRecord = {
      Id: salesforceRecordId(salesforceObjectSchemas[type].keyPrefix, counter++),
      type,
      fields: Object.fromEntries(salesforceObjectSchemas[type].writable.map((name) => [name, fields[name] ?? null])),
      CreatedDate: at,
      LastModifiedDate: at,
      SystemModstamp: at,
      IsDeleted: false,
      deletedAt: null,
    };
    records[type].set(record.Id, record);
    return record;
  };

  const store: SalesforceStore = {
    clock,
    duplicateRuleOnEmail: false,
    // Ids grow with the counter and a Map keeps insertion order: already in id order.
    all: (type) => [...records[type].values()],
    get: find,
    create: (type, fields) => {
      const errors = validate(type, fields, undefined);
      if (errors.length > 0) return { status: 400, errors };
      return { record: insert(type, fields as Record<string, SalesforceFieldValue>, clock.now()) };
    },
    update: (type, id, fields) => {
      const record = find(type, id);
      if (record === undefined) return notFound();
      if (record.IsDeleted) return isDeleted();
      const errors = validate(type, fields, record);
      if (errors.length > 0) return { status: 400, errors };
      Object.assign(record.fields, fields);
      record.LastModifiedDate = record.SystemModstamp = clock.now();
      return { record };
    },
    delete: (type, id) => {
      const record = find(type, id);
      if (record === undefined) return notFound();
      if (record.IsDeleted) return isDeleted();
      record.IsDeleted = true;
      record.deletedAt = record.SystemModstamp = clock.now();
      return { record };
    },
    undelete: (type, id) => {
      const record = find(type, id);
      if (record === undefined) return notFound();
      record.IsDeleted = false;
      record.deletedAt = null;
      record.SystemModstamp = clock.now();
      return { record };
    },
    touch: (type, id) => {
      const record = find(type, id);
      if (record !== undefined) record.SystemModstamp = clock.now();
    },
    seed: (type, n, options = {}) => {
      const spacing = options.spacingMs ?? 1_000;
      const endAt = options.endAt ?? clock.now();
      const created: Array<StoredSalesforceRecord> = [];
      for (let i = 0; i < n; i++) {
        const k = counter;
        const fields: Record<string, SalesforceFieldValue> =
          type === "Contact"
            ? {
                FirstName: firstNames[k % firstNames.length]!,
                LastName: lastNames[k % lastNames.length]!,
                Email: `contact${k}@example.com`,
                Phone: `+1555${String(k).padStart(7, "0")}`,
              }
            : {
                Name: `${lastNames[k % lastNames.length]} ${industries[k % industries.length]} ${k}`,
                Website: `https://account${k}.example.com`,
                Industry: industries[k % industries.length]!,
              };
        created.push(insert(type, fields, endAt - (n - 1 - i) * spacing));
      }
      return created;
    },
    clear: () => {
      records.Contact.clear();
      records.Account.clear();
      store.duplicateRuleOnEmail = false;
    },
  };
  return store;
};
