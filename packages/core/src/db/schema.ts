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
  /** AES-256-GCM envelope of the refresh state the connector's `auth` rotated; null until it did */
  refresh_state_ciphertext: Generated<string | null>;
  status: Generated<"active" | "error" | "disabled">;
  paused: Generated<boolean>;
  /** The connection's own sync settings by entity (see tenancy/syncSettings.ts); `{}`: the connector's defaults */
  sync_settings: ColumnType<unknown, string | undefined, string>;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

export type SyncStatus = "pending" | "synced" | "failed" | "conflict";

/** jsonb columns: written as JSON text or values, read back parsed. */
export type Json = ColumnType<unknown, string, string>;
export type NullableJson = ColumnType<unknown | null, string | null | undefined, string | null>;

/*
 * One writer per table: every insert, update and delete of these tables is in the module named
 * here, which exports the statements or CTE fragments that others compose (reading is free).
 *
 *   records        store/RecordRows.ts      (Connections.delete calls deleteRecordsOfConnection;
 *                                            ReconcileStage composes softDeleteWhere)
 *   sync_cursors   store/SyncCursors.ts     (the records upsert composes checkpointCte)
 *   reconcile_ids  store/ReconcileStage.ts
 *   conflicts      store/ConflictRows.ts
 *   sync_runs      ops/RunRows.ts           (queue/JobStore composes closeRunsOfEndedJobs)
 *   rate_budgets   connector/RateBudgetRows.ts (Connections.delete calls deleteRateBudgetOf)
 *   record_event_cursors  webhooks/RecordEventCursors.ts
 *   quarantined_deletions  store/QuarantineRows.ts
 *   push_outbox    store/PushOutboxRows.ts  (written with the record's change, in its transaction)
 */

/** A synced copy of one remote record (per connection x entity x external id). */
export interface RecordsTable {
  tenant_id: string;
  connection_id: string;
  entity: string;
  /** the vendor's id; an id of ours (`local:<uuid>`) while `external_id_provisional` */
  external_id: string;
  /** the host application's id, unique per connection x entity where set */
  local_id: ColumnType<string | null, string | null | undefined, string | null>;
  /** created locally and not yet at the vendor: `external_id` is ours until the push creates it */
  external_id_provisional: Generated<boolean>;
  /** the record in its encoded (JSON) form */
  data: Json;
  remote_updated_at: NullableTimestamp;
  local_updated_at: NullableTimestamp;
  /** the last state both sides agreed on (three-way merge); null while it is `data` itself */
  base: NullableJson;
  /** fields changed locally and not yet pushed */
  pending_changes: NullableJson;
  version: Generated<number>;
  sync_status: Generated<SyncStatus>;
  sync_error: string | null;
  last_synced_at: NullableTimestamp;
  deleted_at: NullableTimestamp;
  /** from records_change_seq; bumped on every real change (order within one transaction) */
  change_seq: ColumnType<string, string | undefined, string>;
  /** the transaction (xid8) of the last change; the feed is ordered by (change_xid, change_seq) */
  change_xid: ColumnType<string, string | undefined, string>;
  /** the transaction that inserted the row (tells `record.created` from `record.updated`) */
  created_xid: ColumnType<string, string | undefined, never>;
  /** when the store last changed the row */
  changed_at: GeneratedTimestamp;
  created_at: GeneratedTimestamp;
}

/** What a push does to the vendor's record. */
export type PushOperation = "create" | "update" | "delete";

/**
 * One record's unpushed local changes, coalesced: written in the transaction of each local
 * change, drained by push jobs (per connection x entity x operation), removed once pushed.
 */
export interface PushOutboxTable {
  id: string;
  tenant_id: string;
  connection_id: string;
  entity: string;
  /** the record's external id (provisional while the create is not pushed) */
  external_id: string;
  operation: PushOperation;
  /** a change touched one of the entity's critical fields: due at once, drained with high priority */
  critical: Generated<boolean>;
  /** `dead`: the retry policy gave up; listed until retried or discarded */
  status: Generated<"pending" | "dead">;
  due_at: Timestamp;
  /** bumped by every change coalesced into the entry */
  revision: Generated<number>;
  attempts: Generated<number>;
  last_error: string | null;
  last_attempt_at: NullableTimestamp;
  /** the drain job writing it, until `claimed_until` */
  claimed_by: string | null;
  claimed_until: NullableTimestamp;
  first_change_at: Timestamp;
  last_change_at: Timestamp;
}

/** Per connection x entity: the delta cursor, last runs, and the checkpoint of an interrupted run. */
export interface SyncCursorsTable {
  connection_id: string;
  entity: string;
  delta_cursor: NullableTimestamp;
  last_full_at: NullableTimestamp;
  last_delta_at: NullableTimestamp;
  last_reconcile_at: NullableTimestamp;
  checkpoint: NullableJson;
  quarantine: NullableJson;
  /** When the entity's local-only records were matched with the vendor's (sync/matching/). */
  initial_matched_at: NullableTimestamp;
  updated_at: GeneratedTimestamp;
}

/** Remote ids streamed by one reconciliation run, compared with `records` by anti-join. */
export interface ReconcileIdsTable {
  run_id: string;
  external_id: string;
  /** the modification time the remote listed beside the id; null when it lists bare ids */
  remote_updated_at: NullableTimestamp;
  staged_at: GeneratedTimestamp;
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

export interface WebhookEventsTable {
  id: string;
  tenant_id: string;
  connection_id: string;
  /** the vendor's event id: a redelivered event hits the unique key and is not stored twice */
  event_id: string;
  entity: string;
  external_id: string;
  kind: string;
  occurred_at: Timestamp;
  received_at: GeneratedTimestamp;
  processed_at: NullableTimestamp;
}

export interface WebhookSubscriptionsTable {
  id: string;
  tenant_id: string;
  url: string;
  events: ColumnType<ReadonlyArray<string>, string, string>;
  /** the signing secret, encrypted like connection credentials */
  secret_ciphertext: string;
  created_at: GeneratedTimestamp;
  disabled_at: NullableTimestamp;
  disabled_reason: string | null;
}

/**
 * Per connection x entity: the change-feed position up to which `record.*` events were dispatched
 * (see webhooks/RecordEvents.ts).
 */
export interface RecordEventCursorsTable {
  connection_id: string;
  entity: string;
  tenant_id: string;
  /** xid8 and bigint as decimal strings: the position (change_xid, change_seq) of the last change dispatched */
  after_xid: string;
  after_seq: string;
  updated_at: GeneratedTimestamp;
}

export interface WebhookDeliveriesTable {
  id: string;
  seq: Generated<string>;
  tenant_id: string;
  subscription_id: string;
  event_id: string;
  event_type: string;
  payload: JsonColumn;
  /** deliveries of one subscription with the same key are sent in `seq` order (a record's events) */
  ordering_key: Generated<string | null>;
  status: Generated<"pending" | "delivered" | "dead">;
  attempts: Generated<number>;
  last_status: number | null;
  last_error: string | null;
  last_attempt_at: NullableTimestamp;
  delivered_at: NullableTimestamp;
  created_at: GeneratedTimestamp;
}

/** A jsonb column: written as a JSON string (portable across pg and PGlite), read as a value. */
export type JsonColumn = ColumnType<Record<string, unknown>, string, string>;
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
  /** attempts handed back uncounted after an infrastructure fault (lost connection, expired lease) */
  infrastructure_faults: Generated<number>;
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

/** Error classes for metrics and alerts (see RunHistory.errorClassOf). */
export type ErrorClass = "transient" | "validation" | "business" | "system";

export interface SyncRunsTable {
  id: string;
  tenant_id: string;
  connection_id: string;
  entity: string;
  mode: string;
  /** who asked: `api`, `schedule`, `webhook` */
  trigger: string;
  job_id: string | null;
  attempt: Generated<number>;
  status: "running" | "succeeded" | "failed" | "cancelled";
  started_at: Timestamp;
  finished_at: NullableTimestamp;
  duration_ms: number | null;
  pages: Generated<number>;
  created: Generated<number>;
  updated: Generated<number>;
  unchanged: Generated<number>;
  deleted: Generated<number>;
  item_errors: Generated<number>;
  /** reconciliation: records found newer remotely than the stored copy, and re-fetched */
  drifted: Generated<number>;
  /** item errors and the run's own failure, counted by class */
  errors_by_type: ColumnType<Record<string, number>, string | undefined, string>;
  error_type: ErrorClass | null;
  error_message: string | null;
  progress_at: NullableTimestamp;
}

export type AlertKind =
  | "sync_failures"
  | "error_rate"
  | "queue_backlog"
  | "staleness"
  | "performance"
  | "mass_deletion";

/** An alert rule of a tenant; `params` is validated per kind by Alerts.setRule. */
export interface AlertRulesTable {
  id: string;
  tenant_id: string;
  /** unique per tenant; `setRule` without an id replaces the rule of that name */
  name: string;
  kind: AlertKind;
  /** only this connection's subjects; null: every connection of the tenant */
  connection_id: string | null;
  params: JsonColumn;
  enabled: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** One firing of a rule for one subject: opened once, resolved once (open while resolved_at is null). */
export interface AlertsTable {
  id: string;
  seq: Generated<string>;
  tenant_id: string;
  rule_id: string;
  kind: AlertKind;
  /** what fired: `<connection>:<entity>`, `<connection>:<entity>:<mode>`, `tenant` or `connection:<id>` */
  subject: string;
  connection_id: string | null;
  entity: string | null;
  mode: string | null;
  /** the figures that made it fire */
  details: JsonColumn;
  opened_at: Timestamp;
  resolved_at: NullableTimestamp;
  /** why it resolved, with the figures then */
  resolution: ColumnType<Record<string, unknown> | null, string | null | undefined, string | null>;
}

/** A connection's rate budget shared by every process (GCRA form; see connector/RateBudgetRows.ts). */
export interface RateBudgetsTable {
  connection_id: string;
  /** theoretical arrival time: the budget is spent up to here; full once it is the bucket's depth in the past */
  tat: Timestamp;
  /** a vendor's reset or Retry-After: no process sends before it */
  blocked_until: Timestamp;
  updated_at: Timestamp;
}

/** Where a deletion the guard held back was reported: reconciliation, a read's tombstones, a webhook. */
export type QuarantineSource = "reconcile" | "delta" | "full" | "webhook";

/** pending (in the review queue) -> approved (applied) | rejected (record kept) | reappeared (seen live remotely). */
export type QuarantineStatus = "pending" | "approved" | "rejected" | "reappeared";

/** A deletion the mass-deletion guard held back for review, the record left live (see DeletionQuarantine). */
export interface QuarantinedDeletionsTable {
  id: string;
  /** insertion order, for keyset pagination */
  seq: Generated<string>;
  tenant_id: string;
  connection_id: string;
  entity: string;
  external_id: string;
  source: QuarantineSource;
  status: Generated<QuarantineStatus>;
  /** a rejected deletion keeps its record until the record is seen live remotely again */
  keeps_record: Generated<boolean>;
  /** the rule that held it and the figures behind it */
  guard: JsonColumn;
  detected_at: Timestamp;
  resolved_at: NullableTimestamp;
  /** `api-key:<id>`, `admin`, `reconciliation`, `sync option allowMassDeletion`, `remote` (reappeared) */
  resolved_by: string | null;
  /** why it was rejected (the operator's words) or settled otherwise */
  reason: string | null;
  /** the approval that settled it (its records are deleted by one statement) */
  settlement_id: string | null;
}

export interface DB {
  tenants: TenantsTable;
  api_keys: ApiKeysTable;
  connections: ConnectionsTable;
  records: RecordsTable;
  push_outbox: PushOutboxTable;
  sync_cursors: SyncCursorsTable;
  reconcile_ids: ReconcileIdsTable;
  conflicts: ConflictsTable;
  webhook_events: WebhookEventsTable;
  webhook_subscriptions: WebhookSubscriptionsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  record_event_cursors: RecordEventCursorsTable;
  jobs: JobsTable;
  job_attempts: JobAttemptsTable;
  locks: LocksTable;
  schedules: SchedulesTable;
  schedule_ticks: ScheduleTicksTable;
  sync_runs: SyncRunsTable;
  alert_rules: AlertRulesTable;
  alerts: AlertsTable;
  rate_budgets: RateBudgetsTable;
  quarantined_deletions: QuarantinedDeletionsTable;
}

export type TenantRow = Selectable<TenantsTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type NewApiKey = Insertable<ApiKeysTable>;
export type ConnectionRow = Selectable<ConnectionsTable>;
export type NewConnection = Insertable<ConnectionsTable>;
export type ConnectionUpdate = Updateable<ConnectionsTable>;
export type RecordRow = Selectable<RecordsTable>;
export type PushOutboxRow = Selectable<PushOutboxTable>;
export type SyncCursorRow = Selectable<SyncCursorsTable>;
export type JobRow = Selectable<JobsTable>;
export type JobAttemptRow = Selectable<JobAttemptsTable>;
export type LockRow = Selectable<LocksTable>;
export type ScheduleRow = Selectable<SchedulesTable>;
