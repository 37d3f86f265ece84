// The public API of @tandem/core: a curated list, room by room (see README.md, "Package map").
// Services are exported with the views and inputs their callers need; SQL helpers, operation
// modules and table types stay inside the package. A connector author needs none of this: the
// contract is `@tandem/connector-sdk`, re-exported here whole for the host's convenience.

export * from "@tandem/connector-sdk";
// The runtime half of the SDK that a host wires: the context connectors get, and calling them.
export {
  callConnector,
  decodeRecord,
  type EgressAllowList,
  makeConnectorContext,
  makeConnectorHttp,
  makeStandaloneContext,
  makeTokenBucket,
  parseEgressAllowList,
} from "@tandem/connector-sdk/runtime";
// connector/: which connectors are loaded, the credentials they are given, and their rate budgets.
export { ConnectorCredentials } from "./connector/ConnectorCredentials.ts";
export { ConnectorLoadError, ConnectorRegistry, type ConnectorRegistryService } from "./connector/ConnectorRegistry.ts";
export { RateBudgets } from "./connector/RateBudgets.ts";
// db/: the database, and what a stored value may hold.
export {
  ConstraintViolation,
  Database,
  type DatabaseConfig,
  DatabaseRejectedValue,
  DatabaseStartupError,
  DatabaseUnavailable,
} from "./db/Database.ts";
export { isStorableDate, MAX_IDENTIFIER_LENGTH, textIssue } from "./db/Storable.ts";
// The whole engine, composed once.
export { Engine, type EngineConfig, type EngineServices } from "./Engine.ts";
// errors/: the typed failures an API maps to its codes.
export {
  AlreadyExists,
  AlreadyRunning,
  type FieldIssue,
  InvalidInput,
  PreconditionFailed,
  ResourceNotFound,
} from "./errors/Errors.ts";
export { fieldIssuesOfParseIssue } from "./errors/schemaIssues.ts";
// ops/: run history, metrics, alerts, the status read model.
export {
  ALERTS_EVALUATE_JOB_KIND,
  ALERTS_SCHEDULE_NAME,
  AlertRuleInput,
  Alerts,
  type AlertView,
  registerAlertsSchedule,
  requestAlertEvaluation,
} from "./ops/Alerts.ts";
export {
  MetricsReport,
  recordRunMetrics,
  type SyncGauges,
  syncErrorsTotal,
  syncRecordsTotal,
  syncRunDurationSeconds,
  syncRunsTotal,
} from "./ops/MetricsReport.ts";
export { RunHistory, type SyncRunView } from "./ops/RunHistory.ts";
export { finalJobStatuses, type JobProgress, SyncStatus } from "./ops/SyncStatus.ts";
// queue/: jobs, locks, schedules, retries.
export { type EnqueueInput, type JobHandler, JobQueue, type JobView, type RunningJob } from "./queue/JobQueue.ts";
export { fencedBy, LockHeld, LockLost, Locks, recordLockKey, syncLockKey } from "./queue/Locks.ts";
export { describeFailure, isLastAttempt, RetryPolicy, RetryPolicyConfig } from "./queue/RetryPolicy.ts";
export { Scheduler, SchedulerConfig, type ScheduleView, SYNC_JOB_KIND } from "./queue/Scheduler.ts";
// store/: records, the change feed, conflicts.
export { Conflicts, type ConflictView, type ManualResolution, type SettleInput } from "./store/Conflicts.ts";
export {
  DEFAULT_GUARD_LIMITS,
  DeletionGuardConfig,
  type DeletionGuardLimits,
  DeletionQuarantine,
  type QuarantinedDeletionView,
  type QuarantineListFilter,
} from "./store/DeletionQuarantine.ts";
export { decodeFeedPosition, type FeedPosition } from "./store/FeedPosition.ts";
export { type OutboxEntry, PushOutbox } from "./store/PushOutbox.ts";
export { type ChangePage, type ExportFormat, RecordStore, type StoredRecord } from "./store/RecordStore.ts";
export { type LocalChangeView, Records, type RecordView } from "./store/Records.ts";
// sync/: entity syncs by strategy, what triggers them, the job handlers, and SyncJob.
export {
  EntityNotSupported,
  EntitySync,
  type ImportResult,
  type SyncMode,
  type SyncRunResult,
  type SyncTarget,
} from "./sync/EntitySync.ts";
export {
  type DeadPushView,
  type EntityRef,
  LocalChanges,
  type LocalEdit,
  type RecordRef,
} from "./sync/LocalChanges.ts";
export type { PlannedMatch } from "./sync/matching/initialMatch.ts";
export { type MatchKey, matchKeyFor } from "./sync/matching/matchKey.ts";
export type { MatchPlan, VendorRecord } from "./sync/matching/planMatches.ts";
export { type SyncPlanView, toSyncPlanView } from "./sync/matching/planView.ts";
export { defaultPushIntervalMs, PushConfig, type PushOptions } from "./sync/push/PushConfig.ts";
export { deletionsArriveOnTheirOwn, reconcileCadenceOf } from "./sync/reconcileCadence.ts";
export {
  defineSyncJob,
  type ExternalSource,
  InvalidSchedule,
  registerSyncJob,
  runSync,
  type SingleItemResult,
  type SyncInterval,
  type SyncItemError,
  type SyncJob,
  SyncJobs,
  type SyncResult,
  SyncSourceFailed,
  scheduleSyncJob,
  syncIntervals,
  syncSingleItem,
  triggerSync,
  UnknownSyncJob,
} from "./sync/SyncJob.ts";
export { PUSH_DRAIN_JOB_KIND, type PushDrainPayload, SyncJobHandlers } from "./sync/SyncJobHandlers.ts";
export { SyncJobQueue } from "./sync/SyncJobQueue.ts";
export { type EntitySchedules, type LocalChange, SyncTriggers } from "./sync/SyncTriggers.ts";
// tenancy/: tenants, API keys, connections, the credential cipher.
export { ApiKeys, ApiKeysConfig, type CreatedApiKey, generateApiKey, type Principal } from "./tenancy/ApiKeys.ts";
export {
  Connections,
  type ConnectionView,
  type CreateConnection,
  REDACTED,
  type UpdateConnection,
} from "./tenancy/Connections.ts";
export {
  CredentialCipher,
  DecryptionFailed,
  generateSecretKey,
  InvalidSecretKey,
  parseSecretKey,
} from "./tenancy/CredentialCipher.ts";
export { createConnection } from "./tenancy/createConnection.ts";
export { setConnectionSettings } from "./tenancy/setConnectionSettings.ts";
export {
  type EffectiveEntitySettings,
  type EntitySettingsInput,
  effectiveEntitySettings,
  type SettingsSource,
} from "./tenancy/syncSettings.ts";
export { type Tenant, Tenants } from "./tenancy/Tenants.ts";
// webhooks/: inbound intake, outbound subscriptions and deliveries.
export { InboundWebhooks, MalformedWebhook, WebhookRejected } from "./webhooks/InboundWebhooks.ts";
export {
  type DeliveryView,
  OutboundEventType,
  OutboundWebhooks,
  OutboundWebhooksConfig,
  type SubscriptionView,
} from "./webhooks/OutboundWebhooks.ts";
export { RecordEvents } from "./webhooks/RecordEvents.ts";
export { SIGNATURE_HEADER, signPayload, verifySignature } from "./webhooks/WebhookSignature.ts";
