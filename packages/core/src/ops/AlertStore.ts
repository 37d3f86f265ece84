import type { Kysely, Selectable } from "kysely";
import type { AlertKind, AlertRulesTable, AlertsTable, DB } from "../db/schema.ts";

/**
 * The alerts' statements, as plain functions over Kysely: the one module that writes
 * `alert_rules` and `alerts`.
 */

export type RuleRow = Selectable<AlertRulesTable>;
export type AlertRow = Selectable<AlertsTable>;

/** A rule's columns as `setRule` writes them. */
export interface RuleValues {
  readonly kind: AlertKind;
  readonly connection_id: string | null;
  /** JSON text, defaults applied. */
  readonly params: string;
  readonly enabled: boolean;
  readonly updated_at: Date;
}

/** Rules by tenant and name; of one tenant, or of all. */
export const rules = (db: Kysely<DB>, tenantId: string | undefined): Promise<ReadonlyArray<RuleRow>> =>
  db
    .selectFrom("alert_rules")
    .selectAll()
    .$if(tenantId !== undefined, (q) => q.where("tenant_id", "=", tenantId!))
    .orderBy("tenant_id")
    .orderBy("name")
    .execute();

/** Whether the connection is the tenant's (a rule may be scoped to it). */
export const tenantHasConnection = async (db: Kysely<DB>, tenantId: string, connectionId: string) =>
  (await db
    .selectFrom("connections")
    .select("id")
    .where("tenant_id", "=", tenantId)
    .where("id", "=", connectionId)
    .executeTakeFirst()) !== undefined;

/** Updates the tenant's rule of that id (renaming it when `name` is given); none when there is none. */
export const updateRule = (
  db: Kysely<DB>,
  o: { readonly tenantId: string; readonly id: string; readonly name: string | undefined; readonly values: RuleValues },
): Promise<RuleRow | undefined> =>
  db
    .updateTable("alert_rules")
    .set({ ...o.values, ...(o.name !== undefined ? { name: o.name } : {}) })
    .where("tenant_id", "=", o.tenantId)
    .where("id", "=", o.id)
    .returningAll()
    .executeTakeFirst();

/** Creates the tenant's rule of that name, or replaces it. */
export const upsertRuleByName = (
  db: Kysely<DB>,
  o: {
    readonly id: string;
    readonly tenantId: string;
    readonly name: string;
    readonly values: RuleValues;
    readonly now: Date;
  },
): Promise<RuleRow | undefined> =>
  db
    .insertInto("alert_rules")
    .values({ id: o.id, tenant_id: o.tenantId, name: o.name, created_at: o.now, ...o.values })
    .onConflict((oc) => oc.columns(["tenant_id", "name"]).doUpdateSet(o.values))
    .returningAll()
    .executeTakeFirst();

/** Deletes the tenant's rule (its alerts go with it); answers its id, or undefined when there was none. */
export const deleteRule = async (db: Kysely<DB>, tenantId: string, id: string): Promise<string | undefined> =>
  (
    await db
      .deleteFrom("alert_rules")
      .where("tenant_id", "=", tenantId)
      .where("id", "=", id)
      .returning("id")
      .executeTakeFirst()
  )?.id;

/** Inserts the rules the tenant lacks by name, leaving the ones it has. */
export const insertMissingRules = async (
  db: Kysely<DB>,
  rows: ReadonlyArray<{
    readonly id: string;
    readonly tenant_id: string;
    readonly name: string;
    readonly kind: AlertKind;
    readonly connection_id: null;
    readonly params: string;
    readonly created_at: Date;
    readonly updated_at: Date;
  }>,
): Promise<void> => {
  await db
    .insertInto("alert_rules")
    .values([...rows])
    .onConflict((oc) => oc.columns(["tenant_id", "name"]).doNothing())
    .execute();
};

/** Which alerts `alertPage` reads: newest first, before the `seq` cursor. */
export interface AlertFilter {
  readonly status?: "firing" | "resolved" | undefined;
  readonly ruleId?: string | undefined;
  readonly connectionId?: string | undefined;
  readonly cursor?: string | undefined;
}

/** Up to `limit` of the tenant's alerts, newest first, each with its rule's name. */
export const alertPage = (db: Kysely<DB>, tenantId: string, filter: AlertFilter, limit: number) =>
  db
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
    .limit(limit)
    .execute();

/** The rule's open alerts. */
export const openAlerts = (
  db: Kysely<DB>,
  ruleId: string,
): Promise<ReadonlyArray<{ readonly id: string; readonly subject: string }>> =>
  db
    .selectFrom("alerts")
    .select(["id", "subject"])
    .where("rule_id", "=", ruleId)
    .where("resolved_at", "is", null)
    .execute();

/** Opens an alert unless one of the rule and subject is open; answers it, or undefined. */
export const openAlert = (
  db: Kysely<DB>,
  alert: {
    readonly id: string;
    readonly tenant_id: string;
    readonly rule_id: string;
    readonly kind: AlertKind;
    readonly subject: string;
    readonly connection_id: string | null;
    readonly entity: string | null;
    readonly mode: string | null;
    /** JSON text. */
    readonly details: string;
    readonly opened_at: Date;
  },
): Promise<AlertRow | undefined> =>
  db
    .insertInto("alerts")
    .values(alert)
    .onConflict((oc) => oc.columns(["rule_id", "subject"]).where("resolved_at", "is", null).doNothing())
    .returningAll()
    .executeTakeFirst();

/** Resolves an open alert; answers it, or undefined when it was no longer open. */
export const resolveAlert = (
  db: Kysely<DB>,
  alertId: string,
  at: Date,
  resolution: Record<string, unknown>,
): Promise<AlertRow | undefined> =>
  db
    .updateTable("alerts")
    .set({ resolved_at: at, resolution: JSON.stringify(resolution) })
    .where("id", "=", alertId)
    .where("resolved_at", "is", null)
    .returningAll()
    .executeTakeFirst();
