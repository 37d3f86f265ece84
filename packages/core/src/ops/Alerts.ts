import { randomUUID } from "node:crypto";
import { Clock, Context, Effect, Either, Layer, Schema } from "effect";
import type { Selectable } from "kysely";
import { Database, type DatabaseService } from "../db/Database.ts";
import type { AlertKind, AlertRulesTable, AlertsTable } from "../db/schema.ts";
import { AlreadyExists, InvalidInput, ResourceNotFound } from "../errors/Errors.ts";
import { invalidInput } from "../errors/schemaIssues.ts";
import type { JobHandlerSpec, RunningJob } from "../queue/JobQueue.ts";
import { Scheduler } from "../queue/Scheduler.ts";
import { OutboundWebhooks } from "../webhooks/OutboundWebhooks.ts";
import { type Firing, firingSubjects, type Target } from "./alertConditions.ts";

/** Job kind of one alert evaluation pass (payload `{ tenantId? }`: one tenant, or all). */
export const ALERTS_EVALUATE_JOB_KIND = "alerts.evaluate";
/** Name of the cluster-wide schedule that evaluates alerts (see `registerAlertsSchedule`). */
export const ALERTS_SCHEDULE_NAME = "alerts:evaluate";

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

const paramsByKind = {
  sync_failures: SyncFailuresParams,
  error_rate: ErrorRateParams,
  queue_backlog: QueueBacklogParams,
  staleness: StalenessParams,
  performance: PerformanceParams,
} as const;

/** Parameters of each rule kind, with their defaults applied. */
export interface AlertParams {
  readonly sync_failures: typeof SyncFailuresParams.Type;
  readonly error_rate: typeof ErrorRateParams.Type;
  readonly queue_backlog: typeof QueueBacklogParams.Type;
  readonly staleness: typeof StalenessParams.Type;
  readonly performance: typeof PerformanceParams.Type;
}

/** The kinds of alert rules. */
export const AlertKindSchema = Schema.Literal(
  "sync_failures",
  "error_rate",
  "queue_backlog",
  "staleness",
  "performance",
);

/**
 * Input of `Alerts.setRule` (and of the `alerts.setRule` procedure). `params` is
 * checked against the kind's schema (`SyncFailuresParams`, ...); omitted fields take
 * their defaults. With `id`, that rule is updated; without, the rule named `name`
 * (default: the kind, suffixed with the connection when scoped) is created or replaced.
 */
export const AlertRuleInput = Schema.Struct({
  id: Schema.optional(Schema.UUID),
  name: Schema.optional(Schema.NonEmptyTrimmedString.pipe(Schema.maxLength(200))),
  kind: AlertKindSchema,
  /** Only this connection's subjects; null or absent: every connection of the tenant. */
  connectionId: Schema.optional(Schema.NullOr(Schema.UUID)),
  params: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Unknown }), {
    default: () => ({}),
  }),
  /** Default true. A disabled rule fires nothing, and its open alerts resolve at the next evaluation. */
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => true }),
});
export type AlertRuleInput = typeof AlertRuleInput.Encoded;

/** An alert rule as the API shows it. */
export interface AlertRuleView {
  readonly id: string;
  readonly name: string;
  readonly kind: AlertKind;
  readonly connectionId: string | null;
  /** With defaults applied. */
  readonly params: Record<string, unknown>;
  readonly enabled: boolean;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** One firing of a rule for one subject. */
export interface AlertView {
  readonly id: string;
  readonly ruleId: string;
  readonly ruleName: string;
  readonly kind: AlertKind;
  /** `<connection>:<entity>`, `<connection>:<entity>:<mode>` (performance), `tenant` or `connection:<id>` (queue_backlog). */
  readonly subject: string;
  readonly connectionId: string | null;
  readonly entity: string | null;
  readonly mode: string | null;
  readonly status: "firing" | "resolved";
  /** The figures that made it fire (counts, thresholds, times). */
  readonly details: Record<string, unknown>;
  /** Why it resolved: `{ reason: "recovered" | "rule disabled" }`. */
  readonly resolution: Record<string, unknown> | null;
  readonly openedAt: string;
  readonly resolvedAt: string | null;
}

/** Which alerts `list` returns: newest first, keyset-paginated by `cursor`. */
export interface AlertListFilter {
  readonly status?: "firing" | "resolved" | undefined;
  readonly ruleId?: string | undefined;
  readonly connectionId?: string | undefined;
  readonly cursor?: string | undefined;
  /** 1-500, default 50. */
  readonly limit?: number | undefined;
}

/** What one evaluation pass did. */
export interface EvaluationSummary {
  readonly rules: number;
  readonly triggered: number;
  readonly resolved: number;
}

/**
 * The rules `ensureDefaultRules` gives a tenant (each with the kind's default params):
 * 3 failed runs of an entity in an hour; over 50% of an entity's runs failed in an hour
 * (at least 4 runs); over 1000 queued jobs or a due job waiting over 15 minutes; an
 * entity without a successful full or delta run for 2 hours; a run over 3x the median
 * of its previous 10 (at least 5, and at least 1 s).
 */
export const DEFAULT_ALERT_RULES: ReadonlyArray<{ readonly name: string; readonly kind: AlertKind }> = [
  { name: "default: sync failures", kind: "sync_failures" },
  { name: "default: error rate", kind: "error_rate" },
  { name: "default: queue backlog", kind: "queue_backlog" },
  { name: "default: staleness", kind: "staleness" },
  { name: "default: performance", kind: "performance" },
];

type RuleRow = Selectable<AlertRulesTable>;
type AlertRow = Selectable<AlertsTable>;

const toRuleView = (row: RuleRow): AlertRuleView => ({
  id: row.id,
  name: row.name,
  kind: row.kind,
  connectionId: row.connection_id,
  params: row.params,
  enabled: row.enabled,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
});

const toAlertView = (row: AlertRow, ruleName: string): AlertView => ({
  id: row.id,
  ruleId: row.rule_id,
  ruleName,
  kind: row.kind,
  subject: row.subject,
  connectionId: row.connection_id,
  entity: row.entity,
  mode: row.mode,
  status: row.resolved_at === null ? "firing" : "resolved",
  details: row.details,
  resolution: row.resolution,
  openedAt: row.opened_at.toISOString(),
  resolvedAt: row.resolved_at?.toISOString() ?? null,
});

const decodeParams = <K extends AlertKind>(kind: K, params: unknown) =>
  Schema.decodeUnknownEither(paramsByKind[kind] as unknown as Schema.Schema<AlertParams[K], unknown>)(params, {
    errors: "all",
    onExcessProperty: "error",
  });

/**
 * Alert rules per tenant and their evaluation. `evaluate` computes each rule's
 * firing subjects from the run history and the queue; a subject going ok -> firing
 * opens one `alerts` row and emits `alert.triggered`, firing -> ok resolves that row
 * and emits `alert.resolved`, each in one transaction with its outbox rows. An
 * unchanged state writes nothing. Processes may evaluate at once: a partial unique
 * index allows one open alert per rule x subject (the insert is ON CONFLICT DO
 * NOTHING, and only the inserter emits), and a resolve only counts when its
 * `resolved_at is null` update hit the row.
 */
export class Alerts extends Context.Tag("@tandem/core/Alerts")<
  Alerts,
  {
    /** The tenant's rules, by name. */
    readonly rules: (tenantId: string) => Effect.Effect<ReadonlyArray<AlertRuleView>>;
    /** Creates or updates a rule (see `AlertRuleInput`); params are validated per kind. */
    readonly setRule: (
      tenantId: string,
      input: AlertRuleInput,
    ) => Effect.Effect<AlertRuleView, InvalidInput | ResourceNotFound | AlreadyExists>;
    /** Deletes a rule and its alerts (resolving nothing: the rule is gone). */
    readonly deleteRule: (tenantId: string, id: string) => Effect.Effect<{ readonly id: string }, ResourceNotFound>;
    /** Adds the rules of `DEFAULT_ALERT_RULES` the tenant lacks (by name); returns all its rules. */
    readonly ensureDefaultRules: (tenantId: string) => Effect.Effect<ReadonlyArray<AlertRuleView>>;
    /** Alerts of the tenant, newest first. */
    readonly list: (
      tenantId: string,
      filter?: AlertListFilter,
    ) => Effect.Effect<{ readonly items: ReadonlyArray<AlertView>; readonly nextCursor: string | null }, InvalidInput>;
    /** One evaluation pass over every rule of one tenant, or of all tenants. */
    readonly evaluate: (tenantId?: string) => Effect.Effect<EvaluationSummary>;
    /** The worker's handler for `ALERTS_EVALUATE_JOB_KIND`. */
    readonly handlers: Readonly<Record<string, JobHandlerSpec>>;
  }
>() {
  /** Needs Database and OutboundWebhooks. */
  static readonly layer = Layer.effect(
    Alerts,
    Effect.gen(function* () {
      const db = yield* Database;
      const outbound = yield* OutboundWebhooks;
      const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms));

      const ruleRows = (where: { tenantId?: string | undefined }) =>
        db
          .query((k) =>
            k
              .selectFrom("alert_rules")
              .selectAll()
              .$if(where.tenantId !== undefined, (q) => q.where("tenant_id", "=", where.tenantId!))
              .orderBy("tenant_id")
              .orderBy("name")
              .execute(),
          )
          .pipe(Effect.orDie);

      const rules = Effect.fn("Alerts.rules")(function* (tenantId: string) {
        return (yield* ruleRows({ tenantId })).map(toRuleView);
      });

      const setRule = Effect.fn("Alerts.setRule")(function* (tenantId: string, raw: AlertRuleInput) {
        const input = yield* Schema.decodeUnknown(AlertRuleInput)(raw, {
          errors: "all",
          onExcessProperty: "error",
        }).pipe(Effect.mapError((e) => invalidInput(e)));
        const params = decodeParams(input.kind, input.params);
        if (Either.isLeft(params)) return yield* invalidInput(params.left, ["params"]);
        const connectionId = input.connectionId ?? null;
        if (connectionId !== null) {
          const owned = yield* db
            .query((k) =>
              k
                .selectFrom("connections")
                .select("id")
                .where("tenant_id", "=", tenantId)
                .where("id", "=", connectionId)
                .executeTakeFirst(),
            )
            .pipe(Effect.orDie);
          if (owned === undefined) return yield* new ResourceNotFound({ resource: "connection", id: connectionId });
        }
        const at = yield* now;
        const values = {
          kind: input.kind,
          connection_id: connectionId,
          params: JSON.stringify(params.right),
          enabled: input.enabled,
          updated_at: at,
        };
        const name = input.name ?? (connectionId === null ? input.kind : `${input.kind}:${connectionId}`);
        const row = yield* db
          .query((k) =>
            input.id !== undefined
              ? k
                  .updateTable("alert_rules")
                  .set({ ...values, ...(input.name !== undefined ? { name } : {}) })
                  .where("tenant_id", "=", tenantId)
                  .where("id", "=", input.id)
                  .returningAll()
                  .executeTakeFirst()
              : k
                  .insertInto("alert_rules")
                  .values({ id: randomUUID(), tenant_id: tenantId, name, created_at: at, ...values })
                  .onConflict((oc) => oc.columns(["tenant_id", "name"]).doUpdateSet(values))
                  .returningAll()
                  .executeTakeFirst(),
          )
          .pipe(
            Effect.catchTag("ConstraintViolation", (e) =>
              e.constraint === "alert_rules_name"
                ? Effect.fail(new AlreadyExists({ resource: "alert rule", detail: `name "${name}"` }))
                : Effect.die(e),
            ),
          );
        if (row === undefined) return yield* new ResourceNotFound({ resource: "alert rule", id: input.id ?? name });
        return toRuleView(row);
      });

      const deleteRule = Effect.fn("Alerts.deleteRule")(function* (tenantId: string, id: string) {
        const row = yield* db
          .query((k) =>
            k
              .deleteFrom("alert_rules")
              .where("tenant_id", "=", tenantId)
              .where("id", "=", id)
              .returning("id")
              .executeTakeFirst(),
          )
          .pipe(Effect.orDie);
        if (row === undefined) return yield* new ResourceNotFound({ resource: "alert rule", id });
        return { id: row.id };
      });

      const ensureDefaultRules = Effect.fn("Alerts.ensureDefaultRules")(function* (tenantId: string) {
        const at = yield* now;
        yield* db
          .query((k) =>
            k
              .insertInto("alert_rules")
              .values(
                DEFAULT_ALERT_RULES.map((r) => ({
                  id: randomUUID(),
                  tenant_id: tenantId,
                  name: r.name,
                  kind: r.kind,
                  connection_id: null,
                  params: JSON.stringify(Either.getOrThrow(decodeParams(r.kind, {}))),
                  created_at: at,
                  updated_at: at,
                })),
              )
              .onConflict((oc) => oc.columns(["tenant_id", "name"]).doNothing())
              .execute(),
          )
          .pipe(Effect.orDie);
        return yield* rules(tenantId);
      });

      const list = Effect.fn("Alerts.list")(function* (tenantId: string, filter: AlertListFilter = {}) {
        if (filter.cursor !== undefined && !/^\d{1,18}$/.test(filter.cursor)) {
          return yield* new InvalidInput({ issues: [{ path: "cursor", message: "not a cursor this list returned" }] });
        }
        const limit = Math.min(Math.max(filter.limit ?? 50, 1), 500);
        const rows = yield* db
          .query((k) =>
            k
              .selectFrom("alerts as a")
              .innerJoin("alert_rules as r", "r.id", "a.rule_id")
              .selectAll("a")
              .select("r.name as rule_name")
              .where("a.tenant_id", "=", tenantId)
              .$if(filter.status === "firing", (q) => q.where("a.resolved_at", "is", null))
              .$if(filter.status === "resolved", (q) => q.where("a.resolved_at", "is not", null))
              .$if(filter.ruleId !== undefined, (q) => q.where("a.rule_id", "=", filter.ruleId!))
              .$if(filter.connectionId !== undefined, (q) => q.where("a.connection_id", "=", filter.connectionId!))
              .$if(filter.cursor !== undefined, (q) => q.where("a.seq", "<", filter.cursor!))
              .orderBy("a.seq", "desc")
              .limit(limit + 1)
              .execute(),
          )
          .pipe(Effect.orDie);
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return {
          items: page.map((r) => toAlertView(r, r.rule_name)),
          nextCursor: rows.length > limit && last ? String(last.seq) : null,
        };
      });

      /** The subjects a rule fires for now. */
      const firingOf = (rule: RuleRow, at: Date): Effect.Effect<ReadonlyArray<Firing>> => {
        const decoded = decodeParams(rule.kind, rule.params);
        if (Either.isLeft(decoded)) {
          // Rules are validated when set; a row edited by hand must not stop the other rules.
          return Effect.logWarning("alert rule has invalid params; skipped").pipe(
            Effect.annotateLogs({ ruleId: rule.id, error: decoded.left.message }),
            Effect.as([]),
          );
        }
        const condition = firingSubjects[rule.kind] as (
          db: DatabaseService,
          target: Target,
          params: unknown,
          at: Date,
        ) => Effect.Effect<ReadonlyArray<Firing>>;
        return condition(db, { tenantId: rule.tenant_id, connectionId: rule.connection_id }, decoded.right, at);
      };

      const payloadOf = (rule: RuleRow, row: AlertRow) => ({
        alertId: row.id,
        ruleId: rule.id,
        ruleName: rule.name,
        kind: rule.kind,
        subject: row.subject,
        connectionId: row.connection_id,
        entity: row.entity,
        mode: row.mode,
        details: row.details,
        openedAt: row.opened_at.toISOString(),
        ...(row.resolved_at !== null ? { resolvedAt: row.resolved_at.toISOString(), resolution: row.resolution } : {}),
      });

      /** Opens an alert and queues `alert.triggered`, atomically; false if it is already open. */
      const open = (rule: RuleRow, firing: Firing, at: Date) =>
        db.transaction(
          Effect.gen(function* () {
            const row = yield* db
              .query((k) =>
                k
                  .insertInto("alerts")
                  .values({
                    id: randomUUID(),
                    tenant_id: rule.tenant_id,
                    rule_id: rule.id,
                    kind: rule.kind,
                    subject: firing.subject,
                    connection_id: firing.connectionId,
                    entity: firing.entity,
                    mode: firing.mode,
                    details: JSON.stringify(firing.details),
                    opened_at: at,
                  })
                  .onConflict((oc) => oc.columns(["rule_id", "subject"]).where("resolved_at", "is", null).doNothing())
                  .returningAll()
                  .executeTakeFirst(),
              )
              .pipe(Effect.orDie);
            if (row === undefined) return false;
            yield* outbound.emit(rule.tenant_id, "alert.triggered", payloadOf(rule, row));
            return true;
          }),
        );

      /** Resolves an open alert and queues `alert.resolved`, atomically; false if someone else resolved it. */
      const resolve = (rule: RuleRow, alertId: string, at: Date) =>
        db.transaction(
          Effect.gen(function* () {
            const row = yield* db
              .query((k) =>
                k
                  .updateTable("alerts")
                  .set({
                    resolved_at: at,
                    resolution: JSON.stringify({ reason: rule.enabled ? "recovered" : "rule disabled" }),
                  })
                  .where("id", "=", alertId)
                  .where("resolved_at", "is", null)
                  .returningAll()
                  .executeTakeFirst(),
              )
              .pipe(Effect.orDie);
            if (row === undefined) return false;
            yield* outbound.emit(rule.tenant_id, "alert.resolved", payloadOf(rule, row));
            return true;
          }),
        );

      const evaluate = Effect.fn("Alerts.evaluate")(function* (tenantId?: string) {
        const all = yield* ruleRows({ tenantId });
        let triggered = 0;
        let resolved = 0;
        for (const rule of all) {
          const at = yield* now;
          const firing = rule.enabled ? yield* firingOf(rule, at) : [];
          const openRows = yield* db
            .query((k) =>
              k
                .selectFrom("alerts")
                .select(["id", "subject"])
                .where("rule_id", "=", rule.id)
                .where("resolved_at", "is", null)
                .execute(),
            )
            .pipe(Effect.orDie);
          const openSubjects = new Set(openRows.map((r) => r.subject));
          const firingSubjects = new Set(firing.map((f) => f.subject));
          for (const f of firing) {
            if (!openSubjects.has(f.subject) && (yield* open(rule, f, at))) triggered++;
          }
          for (const r of openRows) {
            if (!firingSubjects.has(r.subject) && (yield* resolve(rule, r.id, at))) resolved++;
          }
        }
        return { rules: all.length, triggered, resolved };
      });

      const runEvaluation = (job: RunningJob) => {
        const payload = (job.payload ?? {}) as { readonly tenantId?: string };
        return evaluate(payload.tenantId ?? job.tenantId ?? undefined);
      };

      return {
        rules,
        setRule,
        deleteRule,
        ensureDefaultRules,
        list,
        evaluate,
        handlers: { [ALERTS_EVALUATE_JOB_KIND]: { run: runEvaluation } },
      };
    }),
  );
}

/**
 * Creates (or updates) the cluster-wide schedule that evaluates every tenant's
 * alerts, by default every minute. Every process may call it at startup: the
 * schedule is one row by name, and each tick becomes one job cluster-wide; the
 * dedupe key keeps a slow pass from piling up behind it.
 */
export const registerAlertsSchedule = (options: { readonly cron?: string } = {}) =>
  Effect.flatMap(Scheduler, (scheduler) =>
    scheduler.upsert({
      name: ALERTS_SCHEDULE_NAME,
      cron: options.cron ?? "* * * * *",
      kind: ALERTS_EVALUATE_JOB_KIND,
      payload: {},
      priority: "onDemand",
      maxAttempts: 2,
      dedupeKey: ALERTS_SCHEDULE_NAME,
    }),
  ).pipe(Effect.withSpan("Alerts.registerAlertsSchedule"));
