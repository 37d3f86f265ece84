import { randomUUID } from "node:crypto";
import { Effect, Either, Schema } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import { AlreadyExists, ResourceNotFound } from "../../errors/Errors.ts";
import { invalidInput } from "../../errors/schemaIssues.ts";
import { currentDate } from "../../queue/currentDate.ts";
import * as store from "../AlertStore.ts";
import { AlertRuleInput } from "../Alerts.ts";
import { DEFAULT_ALERT_RULES, decodeParams } from "../alertParams.ts";
import { toRuleView } from "./alertViews.ts";

/** The tenant's rules, by name. */
export const tenantRules = Effect.fn("Alerts.rules")(function* (db: DatabaseService, tenantId: string) {
  return (yield* db.query((k) => store.rules(k, tenantId)).pipe(Effect.orDie)).map(toRuleView);
});

/** Creates or updates a rule (see `AlertRuleInput`); params are validated per kind. */
export const setRule = Effect.fn("Alerts.setRule")(function* (
  db: DatabaseService,
  tenantId: string,
  raw: AlertRuleInput,
) {
  const input = yield* Schema.decodeUnknown(AlertRuleInput)(raw, {
    errors: "all",
    onExcessProperty: "error",
  }).pipe(Effect.mapError((e) => invalidInput(e)));
  const params = decodeParams(input.kind, input.params);
  if (Either.isLeft(params)) return yield* invalidInput(params.left, ["params"]);
  const connectionId = input.connectionId ?? null;
  if (connectionId !== null) {
    const owned = yield* db.query((k) => store.tenantHasConnection(k, tenantId, connectionId)).pipe(Effect.orDie);
    if (!owned) return yield* new ResourceNotFound({ resource: "connection", id: connectionId });
  }
  const at = yield* currentDate;
  const values: store.RuleValues = {
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
        ? store.updateRule(k, { tenantId, id: input.id, name: input.name !== undefined ? name : undefined, values })
        : store.upsertRuleByName(k, { id: randomUUID(), tenantId, name, values, now: at }),
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

/** Adds the rules of `DEFAULT_ALERT_RULES` the tenant lacks (by name); answers all its rules. */
export const ensureDefaultRules = Effect.fn("Alerts.ensureDefaultRules")(function* (
  db: DatabaseService,
  tenantId: string,
) {
  const at = yield* currentDate;
  yield* db
    .query((k) =>
      store.insertMissingRules(
        k,
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
      ),
    )
    .pipe(Effect.orDie);
  return yield* tenantRules(db, tenantId);
});
