import { randomUUID } from "node:crypto";
import { type Context, Effect, Either } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import { currentDate } from "../../queue/currentDate.ts";
import type { OutboundWebhooks } from "../../webhooks/OutboundWebhooks.ts";
import * as store from "../AlertStore.ts";
import { type Firing, firingSubjects, type Target } from "../alertConditions.ts";
import { decodeParams } from "../alertParams.ts";

/** What an evaluation works with: the database and the outbox its events go to. */
export interface EvaluateDeps {
  readonly db: DatabaseService;
  readonly outbound: Context.Tag.Service<OutboundWebhooks>;
}

/** The subjects a rule fires for now. */
const firingOf = (db: DatabaseService, rule: store.RuleRow, at: Date): Effect.Effect<ReadonlyArray<Firing>> => {
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

/** The data of `alert.triggered` and `alert.resolved`. */
const payloadOf = (rule: store.RuleRow, row: store.AlertRow) => ({
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
const open = (deps: EvaluateDeps, rule: store.RuleRow, firing: Firing, at: Date) =>
  deps.db.transaction(
    Effect.gen(function* () {
      const row = yield* deps.db
        .query((k) =>
          store.openAlert(k, {
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
          }),
        )
        .pipe(Effect.orDie);
      if (row === undefined) return false;
      yield* deps.outbound.emit(rule.tenant_id, "alert.triggered", payloadOf(rule, row));
      return true;
    }),
  );

/** Resolves an open alert and queues `alert.resolved`, atomically; false if someone else resolved it. */
const resolve = (deps: EvaluateDeps, rule: store.RuleRow, alertId: string, at: Date) =>
  deps.db.transaction(
    Effect.gen(function* () {
      const row = yield* deps.db
        .query((k) => store.resolveAlert(k, alertId, at, { reason: rule.enabled ? "recovered" : "rule disabled" }))
        .pipe(Effect.orDie);
      if (row === undefined) return false;
      yield* deps.outbound.emit(rule.tenant_id, "alert.resolved", payloadOf(rule, row));
      return true;
    }),
  );

/**
 * One evaluation pass over every rule of one tenant, or of all tenants: a subject going
 * ok -> firing opens an alert, firing -> ok resolves it; an unchanged state writes nothing.
 */
export const evaluateAlerts = Effect.fn("Alerts.evaluate")(function* (deps: EvaluateDeps, tenantId?: string) {
  const all = yield* deps.db.query((k) => store.rules(k, tenantId)).pipe(Effect.orDie);
  let triggered = 0;
  let resolved = 0;
  for (const rule of all) {
    const at = yield* currentDate;
    const firing = rule.enabled ? yield* firingOf(deps.db, rule, at) : [];
    const openRows = yield* deps.db.query((k) => store.openAlerts(k, rule.id)).pipe(Effect.orDie);
    const openSubjects = new Set(openRows.map((r) => r.subject));
    const firingNow = new Set(firing.map((f) => f.subject));
    for (const f of firing) {
      if (!openSubjects.has(f.subject) && (yield* open(deps, rule, f, at))) triggered++;
    }
    for (const r of openRows) {
      if (!firingNow.has(r.subject) && (yield* resolve(deps, rule, r.id, at))) resolved++;
    }
  }
  return { rules: all.length, triggered, resolved };
});
