import type { AnyConnector, ConflictPolicy, EntityDefinition } from "@tandem/connector-sdk";
import { type Redacted, Schema } from "effect";
import type { FieldIssue } from "../errors/Errors.ts";
import { parseCron } from "../queue/cronTicks.ts";
import type { SyncScheduleDefaults } from "../queue/schedules/syncSchedules.ts";
import { intervalCron } from "../sync/intervalCron.ts";
import { recordFieldNames } from "../sync/push/localChangeFields.ts";
import { reconcileCadenceOf } from "../sync/reconcileCadence.ts";

/*
 * A connection's own sync settings, by entity (`connections.settings.get|set`). Every setting is
 * optional: where a connection sets none, the connector's default applies (the entity's
 * definition, else the engine's). Stored as JSON on the connection's row (Connections owns it);
 * an LLM resolver's key is stored there as an encrypted envelope and is never shown.
 */

export type Direction = "pull" | "push" | "both";
/** Who wins when a delete on one side meets an unpushed edit on the other. */
export type DeleteAgainstEdit = "edit-wins" | "delete-wins";

const Side = Schema.Literal("local", "remote");
const Millis = Schema.Int.pipe(Schema.between(0, 86_400_000));
const FieldList = Schema.Array(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))).pipe(
  Schema.maxItems(200),
);
/** A cron expression (5 or 6 fields, UTC), an interval in milliseconds, or null for no schedule. */
const ScheduleValue = Schema.NullOr(Schema.Union(Schema.String.pipe(Schema.maxLength(200)), Schema.Int));

/** A conflict policy as an API caller sets it (the LLM key in clear, on its way in only). */
const ConflictPolicyInput = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("last-write-wins"), clockSkewToleranceMs: Schema.optional(Millis) }),
  Schema.Struct({
    kind: Schema.Literal("source-priority"),
    default: Side,
    fieldOwners: Schema.optional(Schema.Record({ key: Schema.String, value: Side })),
  }),
  Schema.Struct({ kind: Schema.Literal("manual") }),
  Schema.Struct({
    kind: Schema.Literal("llm"),
    baseUrl: Schema.String.pipe(Schema.maxLength(2_000), Schema.pattern(/^https?:\/\//i)),
    model: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)),
    /** Omitted: the key stored for this entity's LLM policy, if any, is kept. */
    apiKey: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(4_000))),
    timeoutMs: Schema.optional(Schema.Int.pipe(Schema.between(100, 300_000))),
  }),
);
export type ConflictPolicyInput = typeof ConflictPolicyInput.Type;

/** One entity's settings as `connections.settings.set` takes them; absent: the default. */
export const EntitySettingsInput = Schema.Struct({
  enabled: Schema.optional(Schema.Boolean),
  direction: Schema.optional(Schema.Literal("pull", "push", "both")),
  schedules: Schema.optional(
    Schema.Struct({
      delta: Schema.optional(ScheduleValue),
      reconcile: Schema.optional(ScheduleValue),
      pushIntervalMs: Schema.optional(Schema.Int.pipe(Schema.between(0, 86_400_000))),
    }),
  ),
  conflictPolicy: Schema.optional(ConflictPolicyInput),
  criticalFields: Schema.optional(FieldList),
  matchKey: Schema.optional(FieldList.pipe(Schema.minItems(1))),
  deleteAgainstEdit: Schema.optional(Schema.Literal("edit-wins", "delete-wins")),
});
export type EntitySettingsInput = typeof EntitySettingsInput.Type;

/** `connections.settings.set`: the named entities' settings are replaced; null resets one to the defaults. */
export const SyncSettingsInput = Schema.Record({ key: Schema.String, value: Schema.NullOr(EntitySettingsInput) });
export type SyncSettingsInput = typeof SyncSettingsInput.Type;

/** The LLM policy as stored: its key an encrypted envelope. */
export type StoredConflictPolicy =
  | Exclude<ConflictPolicyInput, { kind: "llm" }>
  | {
      readonly kind: "llm";
      readonly baseUrl: string;
      readonly model: string;
      readonly apiKeyCiphertext?: string | undefined;
      readonly timeoutMs?: number | undefined;
    };
export type StoredEntitySettings = Omit<EntitySettingsInput, "conflictPolicy"> & {
  readonly conflictPolicy?: StoredConflictPolicy | undefined;
};
/** `connections.sync_settings`: by entity. */
export type StoredSyncSettings = Readonly<Record<string, StoredEntitySettings>>;

/** The LLM policy as the engine reads it: its key decrypted, but Redacted. */
export type ConflictPolicySetting =
  | Exclude<ConflictPolicyInput, { kind: "llm" }>
  | {
      readonly kind: "llm";
      readonly baseUrl: string;
      readonly model: string;
      readonly apiKey?: Redacted.Redacted<string> | undefined;
      readonly timeoutMs?: number | undefined;
    }
  /** A policy the connector's code defines (a function): it can be replaced, not described. */
  | { readonly kind: "custom"; readonly name: string };
export type EntitySettings = Omit<EntitySettingsInput, "conflictPolicy"> & {
  readonly conflictPolicy?: ConflictPolicySetting | undefined;
};
/** A connection's settings as the engine reads them (Connections.resolve): keys decrypted, Redacted. */
export type SyncSettings = Readonly<Record<string, EntitySettings>>;

/** Every setting of an entity, defaults applied. */
export interface EffectiveEntitySettings {
  readonly enabled: boolean;
  readonly direction: Direction;
  readonly schedules: {
    /** A cron, or null for none. */
    readonly delta: string | null;
    readonly reconcile: string | null;
    /** Null: the engine's push interval (`TANDEM_PUSH_INTERVAL_MS`, default 1 s). */
    readonly pushIntervalMs: number | null;
  };
  readonly conflictPolicy: ConflictPolicySetting;
  readonly criticalFields: ReadonlyArray<string>;
  /** The fields initial matching links records by; null: the connector declares none. */
  readonly matchKey: ReadonlyArray<string> | null;
  readonly deleteAgainstEdit: DeleteAgainstEdit;
  /** For each setting above, whether it is the connection's own or the default. */
  readonly sources: Readonly<Record<SettingName, "set" | "default">>;
}
export type SettingName =
  | "enabled"
  | "direction"
  | "schedules.delta"
  | "schedules.reconcile"
  | "schedules.pushIntervalMs"
  | "conflictPolicy"
  | "criticalFields"
  | "matchKey"
  | "deleteAgainstEdit";

/** The connection an entity's settings are read from: its connector and its own settings. */
export interface SettingsSource {
  readonly connector: AnyConnector;
  readonly settings: SyncSettings;
  /** The running engine's default crons (`syncScheduleDefaults`), where neither the connection nor the connector sets one. */
  readonly scheduleDefaults: SyncScheduleDefaults;
}

const codePolicy = (policy: ConflictPolicy | undefined): ConflictPolicySetting => {
  if (policy === undefined || policy.kind === "manual") return { kind: "manual" };
  if (policy.kind === "custom") return { kind: "custom", name: policy.name };
  return policy;
};

/** A schedule value as a cron: an interval becomes its cron (validated on set). */
export const scheduleCron = (value: string | number | null): string | null =>
  typeof value === "number" ? (intervalCron(value) ?? null) : value;

/**
 * The effective settings of one entity of a connection: the connection's own, else the
 * connector's defaults (the entity's definition), else the engine's. Undefined when the
 * connector has no such entity. This is the one reader every part of the engine goes through
 * (pulls, local changes, the drain, schedules, matching).
 */
export const effectiveEntitySettings = (
  connection: SettingsSource,
  entity: string,
): EffectiveEntitySettings | undefined => {
  const definition: EntityDefinition<any, any> | undefined = connection.connector.entities[entity];
  if (definition === undefined) return undefined;
  const cadence = reconcileCadenceOf(definition);
  const defaults = connection.scheduleDefaults;
  const defaultReconcile =
    cadence === "none" ? null : cadence === "daily" ? defaults.reconcileCron : defaults.safetyNetReconcileCron;
  const own = connection.settings[entity] ?? {};
  const source = (set: boolean) => (set ? ("set" as const) : ("default" as const));
  const matchKeyDefault = (definition as { readonly matchKey?: ReadonlyArray<string> }).matchKey;
  return {
    enabled: own.enabled ?? true,
    direction: own.direction ?? (definition.write === undefined ? "pull" : "both"),
    schedules: {
      delta: own.schedules?.delta !== undefined ? scheduleCron(own.schedules.delta) : defaults.deltaCron,
      reconcile: own.schedules?.reconcile !== undefined ? scheduleCron(own.schedules.reconcile) : defaultReconcile,
      pushIntervalMs: own.schedules?.pushIntervalMs ?? definition.pushIntervalMs ?? null,
    },
    conflictPolicy: own.conflictPolicy ?? codePolicy(definition.conflictPolicy),
    criticalFields: own.criticalFields ?? definition.criticalFields ?? [],
    matchKey: own.matchKey ?? matchKeyDefault ?? null,
    deleteAgainstEdit: own.deleteAgainstEdit ?? "edit-wins",
    sources: {
      enabled: source(own.enabled !== undefined),
      direction: source(own.direction !== undefined),
      "schedules.delta": source(own.schedules?.delta !== undefined),
      "schedules.reconcile": source(own.schedules?.reconcile !== undefined),
      "schedules.pushIntervalMs": source(own.schedules?.pushIntervalMs !== undefined),
      conflictPolicy: source(own.conflictPolicy !== undefined),
      criticalFields: source(own.criticalFields !== undefined),
      matchKey: source(own.matchKey !== undefined),
      deleteAgainstEdit: source(own.deleteAgainstEdit !== undefined),
    },
  };
};

const scheduleIssues = (value: string | number | null | undefined, path: string): Array<FieldIssue> => {
  if (value === undefined || value === null) return [];
  if (typeof value === "number") {
    return intervalCron(value) === undefined
      ? [
          {
            path,
            message: `${value} ms has no exact cron: give a whole number of seconds dividing a minute, minutes dividing an hour, or hours dividing a day`,
          },
        ]
      : [];
  }
  try {
    parseCron(value);
    return [];
  } catch (e) {
    return [{ path, message: `not a cron expression: ${e instanceof Error ? e.message : String(e)}` }];
  }
};

/**
 * What is wrong with settings for a connector, beyond their shape: an entity the connector lacks,
 * a field its record lacks (critical fields, field owners, the match key), a direction the entity
 * cannot honour, a schedule that is no cron. Paths start at `entities`.
 */
export const settingsIssues = (connector: AnyConnector, input: SyncSettingsInput): Array<FieldIssue> => {
  const issues: Array<FieldIssue> = [];
  for (const [name, settings] of Object.entries(input)) {
    const at = `entities.${name}`;
    const entity: EntityDefinition<any, any> | undefined = connector.entities[name];
    if (entity === undefined) {
      issues.push({
        path: at,
        message: `connector ${connector.name} has no entity "${name}"; it has ${Object.keys(connector.entities).join(", ")}`,
      });
      continue;
    }
    if (settings === null) continue;
    const fields = recordFieldNames(entity);
    const checkField = (field: string, path: string) => {
      if (fields !== undefined && !fields.includes(field)) {
        issues.push({ path, message: `entity ${name} has no field "${field}"; it has ${fields.join(", ")}` });
      }
    };
    for (const [i, f] of (settings.criticalFields ?? []).entries()) checkField(f, `${at}.criticalFields.${i}`);
    for (const [i, f] of (settings.matchKey ?? []).entries()) checkField(f, `${at}.matchKey.${i}`);
    if (settings.conflictPolicy?.kind === "source-priority") {
      for (const f of Object.keys(settings.conflictPolicy.fieldOwners ?? {})) {
        checkField(f, `${at}.conflictPolicy.fieldOwners.${f}`);
      }
    }
    if (settings.direction !== undefined && settings.direction !== "pull" && entity.write === undefined) {
      issues.push({
        path: `${at}.direction`,
        message: `entity ${name} of connector ${connector.name} cannot write: its direction can only be "pull"`,
      });
    }
    issues.push(...scheduleIssues(settings.schedules?.delta, `${at}.schedules.delta`));
    issues.push(...scheduleIssues(settings.schedules?.reconcile, `${at}.schedules.reconcile`));
  }
  return issues;
};

/** The API's view of an entity's effective settings: the LLM key shown as `[redacted]` when one is set. */
export const settingsView = (settings: EffectiveEntitySettings, redacted: string) => ({
  ...settings,
  conflictPolicy:
    settings.conflictPolicy.kind === "llm"
      ? {
          ...settings.conflictPolicy,
          apiKey: settings.conflictPolicy.apiKey === undefined ? undefined : redacted,
        }
      : settings.conflictPolicy,
});
