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

/** A job's lifecycle: queued -> running -> completed | dead | cancelled (dead = the dead-letter queue). */
export type JobStatus = "queued" | "running" | "completed" | "dead" | "cancelled";

/** One error of a job attempt, as stored in the error history. */
export interface StoredJobError {
  readonly tag: string;
  readonly message: string;
}

export interface JobsTable {
  id: string;
  kind: string;
  payload: ColumnType<unknown, string | undefined, string>;
  /** 0 webhook, 1 on-demand, 2 delta, 3 backfill (see JobPriority) */
  priority: number;
  tenant_id: string | null;
  connection_id: string | null;
  status: Generated<JobStatus>;
  run_at: Timestamp;
  attempts: Generated<number>;
  max_attempts: Generated<number>;
  /** fencing token, bumped by every claim; bigint arrives as a string from pg */
  lease_token: ColumnType<string, string | number | undefined, string | number>;
  locked_by: string | null;
  locked_until: NullableTimestamp;
  dedupe_key: string | null;
  cancel_requested: Generated<boolean>;
  last_error: ColumnType<StoredJobError | null, string | null | undefined, string | null>;
  result: ColumnType<unknown, string | null | undefined, string | null>;
  created_at: Timestamp;
  updated_at: Timestamp;
  started_at: NullableTimestamp;
  finished_at: NullableTimestamp;
}

export type JobAttemptOutcome = "completed" | "failed" | "lease_expired" | "released" | "cancelled";

export interface JobAttemptsTable {
  id: Generated<string>;
  job_id: string;
  attempt: number;
  lease_token: ColumnType<string, string | number, string | number>;
  worker: string;
  outcome: JobAttemptOutcome;
  error: ColumnType<StoredJobError | null, string | null | undefined, string | null>;
  started_at: NullableTimestamp;
  finished_at: Timestamp;
}

export interface LocksTable {
  key: string;
  holder: string;
  /** fencing token from the lock_tokens sequence: strictly increasing across acquisitions */
  token: ColumnType<string, string | number, string | number>;
  job_id: string | null;
  acquired_at: Timestamp;
  expires_at: Timestamp;
}

export interface SchedulesTable {
  id: string;
  name: string;
  cron: string;
  timezone: Generated<string>;
  kind: string;
  payload: ColumnType<unknown, string | undefined, string>;
  priority: Generated<number>;
  tenant_id: string | null;
  connection_id: string | null;
  entity: string | null;
  max_attempts: number | null;
  dedupe_key: string | null;
  paused: Generated<boolean>;
  last_tick_at: Timestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ScheduleTicksTable {
  schedule_id: string;
  tick_at: Timestamp;
  job_id: string | null;
  created_at: Timestamp;
}

export interface DB {
  tenants: TenantsTable;
  api_keys: ApiKeysTable;
  connections: ConnectionsTable;
  jobs: JobsTable;
  job_attempts: JobAttemptsTable;
  locks: LocksTable;
  schedules: SchedulesTable;
  schedule_ticks: ScheduleTicksTable;
}

export type TenantRow = Selectable<TenantsTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type NewApiKey = Insertable<ApiKeysTable>;
export type ConnectionRow = Selectable<ConnectionsTable>;
export type NewConnection = Insertable<ConnectionsTable>;
export type ConnectionUpdate = Updateable<ConnectionsTable>;
export type JobRow = Selectable<JobsTable>;
export type JobAttemptRow = Selectable<JobAttemptsTable>;
export type LockRow = Selectable<LocksTable>;
export type ScheduleRow = Selectable<SchedulesTable>;
