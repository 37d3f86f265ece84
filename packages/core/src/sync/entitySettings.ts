import { type ConflictPolicy, type EntityDefinition, llmResolver } from "@tandem/connector-sdk";
import type { EgressPolicyService } from "@tandem/connector-sdk/runtime";
import { PreconditionFailed } from "../errors/Errors.ts";
import {
  type ConflictPolicySetting,
  type EffectiveEntitySettings,
  effectiveEntitySettings,
  type SettingsSource,
} from "../tenancy/syncSettings.ts";

/** An entity as the engine runs it for one connection: its definition under the connection's settings. */
export interface SettledEntity {
  /** The definition with the settings' conflict policy, critical fields and push interval. */
  readonly entity: EntityDefinition<any, any>;
  readonly settings: EffectiveEntitySettings;
}

const policyOf = (
  setting: ConflictPolicySetting,
  definition: EntityDefinition<any, any>,
  egress: EgressPolicyService,
): ConflictPolicy | undefined => {
  switch (setting.kind) {
    case "custom":
      // The connector's own function: only the code has it.
      return definition.conflictPolicy;
    case "llm":
      return llmResolver({
        baseUrl: setting.baseUrl,
        model: setting.model,
        apiKey: setting.apiKey,
        record: definition.record,
        egress,
        ...(setting.timeoutMs !== undefined ? { timeoutMs: setting.timeoutMs } : {}),
      });
    default:
      return setting;
  }
};

/**
 * The one resolver of what the engine reads from an entity: its definition, with the conflict
 * policy, critical fields and push interval replaced by the connection's settings where it set
 * them (pulls, the drain and merges then read `entity` as before), and the other settings
 * (enabled, direction, delete against edit) beside it. Undefined when the connector has no such entity.
 */
export const settledEntity = (
  connection: SettingsSource,
  name: string,
  egress: EgressPolicyService,
): SettledEntity | undefined => {
  const definition = connection.connector.entities[name];
  const settings = effectiveEntitySettings(connection, name);
  if (definition === undefined || settings === undefined) return undefined;
  const conflictPolicy = policyOf(settings.conflictPolicy, definition, egress);
  const entity: EntityDefinition<any, any> = {
    ...definition,
    criticalFields: settings.criticalFields,
    ...(settings.schedules.pushIntervalMs !== null ? { pushIntervalMs: settings.schedules.pushIntervalMs } : {}),
    ...(conflictPolicy !== undefined ? { conflictPolicy } : {}),
  };
  return { entity, settings };
};

/** Why a local change to this entity is refused by its settings, or undefined when it is allowed. */
export const localChangeRefusal = (
  settings: EffectiveEntitySettings,
  entity: string,
): PreconditionFailed | undefined => {
  if (!settings.enabled) {
    return new PreconditionFailed({
      message: `sync of entity ${entity} is disabled on this connection (its settings): local changes are not accepted`,
    });
  }
  if (settings.direction === "pull") {
    return new PreconditionFailed({
      message: `entity ${entity} syncs in direction "pull" on this connection (its settings): local changes are not accepted`,
    });
  }
  return undefined;
};

/** Whether pulls (delta, full, reconcile, webhook syncs) run for the entity. */
export const pullsRun = (settings: EffectiveEntitySettings) => settings.enabled && settings.direction !== "push";
/**
 * Whether local changes are pushed for the entity. An entity that cannot write is not stopped
 * here: a push of it is refused as unsupported, as without settings.
 */
export const pushesRun = (r: {
  readonly entity: EntityDefinition<any, any>;
  readonly settings: EffectiveEntitySettings;
}) => r.entity.write === undefined || (r.settings.enabled && r.settings.direction !== "pull");
