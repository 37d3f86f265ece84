import { Context, Effect, Layer, Schema } from "effect";
import { Database } from "../db/Database.ts";
import type { AlertKind } from "../db/schema.ts";
import { type AlreadyExists, type InvalidInput, ResourceNotFound } from "../errors/Errors.ts";
import type { JobHandlerSpec, RunningJob } from "../queue/JobQueue.ts";
import { Scheduler } from "../queue/Scheduler.ts";
import { OutboundWebhooks } from "../webhooks/OutboundWebhooks.ts";
import * as store from "./AlertStore.ts";
import { AlertKindSchema } from "./alertParams.ts";
import { listAlerts } from "./alerts/alertViews.ts";
import { evaluateAlerts } from "./alerts/evaluateAlerts.ts";
import { ALERTS_EVALUATE_JOB_KIND } from "./alerts/evaluationJob.ts";
import { ensureDefaultRules, setRule, tenantRules } from "./alerts/setRule.ts";

export {
  AlertKindSchema,
  type AlertParams,
  DEFAULT_ALERT_RULES,
  ErrorRateParams,
  MassDeletionParams,
  PerformanceParams,
  QueueBacklogParams,
  StalenessParams,
  SyncFailuresParams,
} from "./alertParams.ts";

export { ALERTS_EVALUATE_JOB_KIND, requestAlertEvaluation } from "./alerts/evaluationJob.ts";
/** Name of the cluster-wide schedule that evaluates alerts (see `registerAlertsSchedule`). */
export const ALERTS_SCHEDULE_NAME = "alerts:evaluate";

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

/** The alerts' operations; see Alerts. */
export interface AlertsService {
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
export class Alerts extends Context.Tag("@tandem/core/Alerts")<Alerts, AlertsService>() {
  /** Needs Database and OutboundWebhooks. */
  static readonly layerNoDeps = Layer.effect(
    Alerts,
    Effect.suspend(() => makeAlerts),
  );

  /** Needs Database and CredentialCipher (OutboundWebhooks' roots). */
  static readonly layer = Alerts.layerNoDeps.pipe(Layer.provide(OutboundWebhooks.layer));
}

const makeAlerts = Effect.gen(function* () {
  const db = yield* Database;
  const outbound = yield* OutboundWebhooks;
  const evaluate = (tenantId?: string) => evaluateAlerts({ db, outbound }, tenantId);
  const runEvaluation = (job: RunningJob) => {
    const payload = (job.payload ?? {}) as { readonly tenantId?: string };
    return evaluate(payload.tenantId ?? job.tenantId ?? undefined);
  };
  return {
    rules: (tenantId) => tenantRules(db, tenantId),
    setRule: (tenantId, input) => setRule(db, tenantId, input),
    deleteRule: Effect.fn("Alerts.deleteRule")(function* (tenantId: string, id: string) {
      const deleted = yield* db.query((k) => store.deleteRule(k, tenantId, id)).pipe(Effect.orDie);
      if (deleted === undefined) return yield* new ResourceNotFound({ resource: "alert rule", id });
      return { id: deleted };
    }),
    ensureDefaultRules: (tenantId) => ensureDefaultRules(db, tenantId),
    list: (tenantId, filter) => listAlerts(db, tenantId, filter),
    evaluate,
    handlers: { [ALERTS_EVALUATE_JOB_KIND]: { run: runEvaluation } },
  } satisfies AlertsService;
});

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
