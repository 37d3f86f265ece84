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

export interface DB {
  tenants: TenantsTable;
  api_keys: ApiKeysTable;
  connections: ConnectionsTable;
}

export type TenantRow = Selectable<TenantsTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type NewApiKey = Insertable<ApiKeysTable>;
export type ConnectionRow = Selectable<ConnectionsTable>;
export type NewConnection = Insertable<ConnectionsTable>;
export type ConnectionUpdate = Updateable<ConnectionsTable>;
