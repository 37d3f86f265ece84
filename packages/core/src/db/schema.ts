import type { ColumnType, Generated, Insertable, Selectable, Updateable } from "kysely";

/** Timestamps are written as Date or ISO strings and always read back as Date. */
export type Timestamp = ColumnType<Date, Date | string, Date | string>;
/** A timestamp the database fills in by default. */
export type GeneratedTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;
export type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;

export interface TenantsTable {
  id: string;
  name: string;
  created_at: GeneratedTimestamp;
}

export interface ApiKeysTable {
  id: string;
  /** null for the bootstrap admin key */
  tenant_id: string | null;
  role: "admin" | "tenant";
  name: string;
  /** first characters of the key, shown to operators to tell keys apart */
  prefix: string;
  /** SHA-256 of the whole key (keys are 256-bit random, so a slow hash adds nothing) */
  key_hash: string;
  created_at: GeneratedTimestamp;
  revoked_at: NullableTimestamp;
}

export interface ConnectionsTable {
  id: string;
  tenant_id: string;
  connector: string;
  name: string;
  /** AES-256-GCM envelope of the encoded config (see CredentialCipher) */
  config_ciphertext: string;
  status: Generated<"active" | "error" | "disabled">;
  paused: Generated<boolean>;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

export interface ConflictsTable {
  id: string;
  /** insertion order, for keyset pagination */
  seq: Generated<string>;
  tenant_id: string;
  connection_id: string;
  entity: string;
  external_id: string;
  base: JsonColumn | null;
  local: JsonColumn;
  remote: JsonColumn;
  /** fields that merged cleanly */
  merged: JsonColumn;
  /** names of the conflicting fields */
  fields: ColumnType<ReadonlyArray<string>, string, string>;
  local_updated_at: Timestamp;
  remote_updated_at: Timestamp;
  policy: string;
  status: "open" | "resolved";
  /** the values chosen for the conflicting fields */
  resolution: JsonColumn | null;
  /** `policy:<name>`, `llm:<model>` or `api-key:<id>` */
  resolved_by: string | null;
  /** why a conflict awaits a person (manual policy, resolver failure) */
  reason: string | null;
  created_at: GeneratedTimestamp;
  resolved_at: NullableTimestamp;
}

/** A jsonb column: written as a JSON string (portable across pg and PGlite), read as a value. */
export type JsonColumn = ColumnType<Record<string, unknown>, string, string>;

export interface DB {
  tenants: TenantsTable;
  api_keys: ApiKeysTable;
  connections: ConnectionsTable;
  conflicts: ConflictsTable;
}

export type TenantRow = Selectable<TenantsTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type NewApiKey = Insertable<ApiKeysTable>;
export type ConnectionRow = Selectable<ConnectionsTable>;
export type NewConnection = Insertable<ConnectionsTable>;
export type ConnectionUpdate = Updateable<ConnectionsTable>;
