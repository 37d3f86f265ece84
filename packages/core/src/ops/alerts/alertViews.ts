import { Effect } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import { InvalidInput } from "../../errors/Errors.ts";
import * as store from "../AlertStore.ts";
import type { AlertListFilter, AlertRuleView, AlertView } from "../Alerts.ts";

/** A rule row as the API shows it. */
export const toRuleView = (row: store.RuleRow): AlertRuleView => ({
  id: row.id,
  name: row.name,
  kind: row.kind,
  connectionId: row.connection_id,
  params: row.params,
  enabled: row.enabled,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
});

/** An alert row as the API shows it. */
export const toAlertView = (row: store.AlertRow, ruleName: string): AlertView => ({
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

/** A page of the tenant's alerts, newest first; InvalidInput for a cursor `list` did not answer. */
export const listAlerts = Effect.fn("Alerts.list")(function* (
  db: DatabaseService,
  tenantId: string,
  filter: AlertListFilter = {},
) {
  if (filter.cursor !== undefined && !/^\d{1,18}$/.test(filter.cursor)) {
    return yield* new InvalidInput({ issues: [{ path: "cursor", message: "not a cursor this list returned" }] });
  }
  const limit = Math.min(Math.max(filter.limit ?? 50, 1), 500);
  const rows = yield* db.query((k) => store.alertPage(k, tenantId, filter, limit + 1)).pipe(Effect.orDie);
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map((r) => toAlertView(r, r.rule_name)),
    nextCursor: rows.length > limit && last ? String(last.seq) : null,
  };
});
