import { Schema } from "effect";
import type { AlertKind } from "../db/schema.ts";

const PositiveInt = Schema.Int.pipe(Schema.positive());
/** Windows and ages, in minutes, up to a year. */
const Minutes = PositiveInt.pipe(Schema.lessThanOrEqualTo(525_600));

/** `sync_failures`: fires per connection x entity with at least `failures` failed runs finished in the last `windowMinutes`. */
export const SyncFailuresParams = Schema.Struct({
  /** Failed runs (attempts) that make it fire. Default 3. */
  failures: Schema.optionalWith(PositiveInt, { default: () => 3 }),
  /** Default 60. */
  windowMinutes: Schema.optionalWith(Minutes, { default: () => 60 }),
});

/**
 * `error_rate`: fires per connection x entity when, of the runs finished in the last
 * `windowMinutes` (at least `minRuns` of them), the failed share is above `thresholdPercent`.
 */
export const ErrorRateParams = Schema.Struct({
  /** 0-100; fires when strictly above. Default 50. */
  thresholdPercent: Schema.optionalWith(Schema.Number.pipe(Schema.between(0, 100)), { default: () => 50 }),
  /** Default 60. */
  windowMinutes: Schema.optionalWith(Minutes, { default: () => 60 }),
  /** Fewer finished runs than this say nothing about a rate. Default 4. */
  minRuns: Schema.optionalWith(PositiveInt, { default: () => 4 }),
});

/**
 * `queue_backlog`: fires for the tenant (or the rule's connection) when more than
 * `maxQueued` jobs are queued, or when the oldest due queued job has waited longer than
 * `maxWaitMinutes` (jobs waiting for a retry's backoff are not due and do not count as waiting).
 */
export const QueueBacklogParams = Schema.Struct({
  /** Default 1000. */
  maxQueued: Schema.optionalWith(PositiveInt, { default: () => 1_000 }),
  /** Default 15. */
  maxWaitMinutes: Schema.optionalWith(Minutes, { default: () => 15 }),
});

/**
 * `staleness`: fires per connection x entity when its last successful full or delta run
 * finished more than `maxAgeMinutes` ago (never succeeded: counted from its first run).
 * Paused connections are stale by choice and are skipped.
 */
export const StalenessParams = Schema.Struct({
  /** Default 120 (eight missed runs of the default 15-minute delta schedule). */
  maxAgeMinutes: Schema.optionalWith(Minutes, { default: () => 120 }),
});

/**
 * `performance`: fires per connection x entity x mode when its latest successful run took
 * longer than `factor` x the median of the `samples` successful runs before it (at least
 * `minSamples` of them) and at least `minDurationMs` (sub-second runs are noise).
 */
export const PerformanceParams = Schema.Struct({
  /** Default 3. */
  factor: Schema.optionalWith(Schema.Number.pipe(Schema.greaterThan(1)), { default: () => 3 }),
  /** Default 10. */
  samples: Schema.optionalWith(PositiveInt.pipe(Schema.lessThanOrEqualTo(1_000)), { default: () => 10 }),
  /** Default 5. */
  minSamples: Schema.optionalWith(PositiveInt, { default: () => 5 }),
  /** Default 1000. */
  minDurationMs: Schema.optionalWith(Schema.NonNegativeInt, { default: () => 1_000 }),
});

/**
 * `mass_deletion`: fires per connection x entity while the mass-deletion guard holds at least
 * `minPending` of its deletions in the review queue (see DeletionQuarantine); resolves when the
 * queue is empty again (approved, rejected, or the records seen live remotely). One firing per
 * burst: deletions added while it fires join the open alert.
 */
export const MassDeletionParams = Schema.Struct({
  /** Default 1: any held deletion wants an operator. */
  minPending: Schema.optionalWith(PositiveInt, { default: () => 1 }),
});

const paramsByKind = {
  sync_failures: SyncFailuresParams,
  error_rate: ErrorRateParams,
  queue_backlog: QueueBacklogParams,
  staleness: StalenessParams,
  performance: PerformanceParams,
  mass_deletion: MassDeletionParams,
} as const;

/** Parameters of each rule kind, with their defaults applied. */
export interface AlertParams {
  readonly sync_failures: typeof SyncFailuresParams.Type;
  readonly error_rate: typeof ErrorRateParams.Type;
  readonly queue_backlog: typeof QueueBacklogParams.Type;
  readonly staleness: typeof StalenessParams.Type;
  readonly performance: typeof PerformanceParams.Type;
  readonly mass_deletion: typeof MassDeletionParams.Type;
}

/** The kinds of alert rules. */
export const AlertKindSchema = Schema.Literal(
  "sync_failures",
  "error_rate",
  "queue_backlog",
  "staleness",
  "performance",
  "mass_deletion",
);

/**
 * The rules `ensureDefaultRules` gives a tenant (each with the kind's default params):
 * 3 failed runs of an entity in an hour; over 50% of an entity's runs failed in an hour
 * (at least 4 runs); over 1000 queued jobs or a due job waiting over 15 minutes; an
 * entity without a successful full or delta run for 2 hours; a run over 3x the median
 * of its previous 10 (at least 5, and at least 1 s); deletions held by the mass-deletion guard.
 */
export const DEFAULT_ALERT_RULES: ReadonlyArray<{ readonly name: string; readonly kind: AlertKind }> = [
  { name: "default: sync failures", kind: "sync_failures" },
  { name: "default: error rate", kind: "error_rate" },
  { name: "default: queue backlog", kind: "queue_backlog" },
  { name: "default: staleness", kind: "staleness" },
  { name: "default: performance", kind: "performance" },
  { name: "default: mass deletion", kind: "mass_deletion" },
];

/** Decodes a rule's params against its kind's schema, applying defaults. */
export const decodeParams = <K extends AlertKind>(kind: K, params: unknown) =>
  Schema.decodeUnknownEither(paramsByKind[kind] as unknown as Schema.Schema<AlertParams[K], unknown>)(params, {
    errors: "all",
    onExcessProperty: "error",
  });
