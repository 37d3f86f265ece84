import type { AnyConnector, EntityDefinition } from "@tandem/connector-sdk";
import type { EgressPolicyService } from "@tandem/connector-sdk/runtime";
import { type Context, Effect } from "effect";
import type { PushOperation } from "../../db/schema.ts";
import { InvalidInput, type PreconditionFailed, type ResourceNotFound } from "../../errors/Errors.ts";
import type { RecordScope } from "../../store/RecordStore.ts";
import type { Connections } from "../../tenancy/Connections.ts";
import type { EffectiveEntitySettings } from "../../tenancy/syncSettings.ts";
import { localChangeRefusal, settledEntity } from "../entitySettings.ts";
import { localChangeIssues } from "../push/localChangeFields.ts";

/** Which entity of which connection. */
export interface EntityRef {
  readonly connectionId: string;
  readonly entity: string;
}

/** How a local change is refused. */
export type LocalChangeError = ResourceNotFound | InvalidInput | PreconditionFailed;

export interface ChangeTargetDeps {
  readonly connections: Context.Tag.Service<Connections>;
  readonly egress: EgressPolicyService;
}

/** The entity a local change is made to: the connection's connector, the entity under its settings, the records' scope. */
export interface ChangeTarget {
  readonly connector: AnyConnector;
  readonly entity: EntityDefinition<any, any>;
  readonly settings: EffectiveEntitySettings;
  readonly scope: RecordScope;
  /** The connection is paused: changes are stored, no drain runs until it is resumed. */
  readonly paused: boolean;
}

/** The connection (the tenant's) and its connector's entity; InvalidInput naming the entity otherwise. */
export const resolveChangeTarget = (
  deps: ChangeTargetDeps,
  tenantId: string,
  input: EntityRef,
): Effect.Effect<ChangeTarget, ResourceNotFound | InvalidInput> =>
  Effect.gen(function* () {
    const connection = yield* deps.connections.resolve(tenantId, input.connectionId);
    const { connector, row } = connection;
    const settled = settledEntity(connection, input.entity, deps.egress);
    if (settled === undefined) {
      return yield* new InvalidInput({
        issues: [
          {
            path: "entity",
            message: `connector ${connector.name} has no entity "${input.entity}"; it has ${Object.keys(connector.entities).join(", ")}`,
          },
        ],
      });
    }
    const scope: RecordScope = { tenantId, connectionId: input.connectionId, entity: input.entity };
    return { connector, entity: settled.entity, settings: settled.settings, scope, paused: row.paused };
  });

/** The entity, when its settings accept local changes (enabled, direction push or both). */
export const changeableTarget = (
  deps: ChangeTargetDeps,
  tenantId: string,
  input: EntityRef,
): Effect.Effect<ChangeTarget, LocalChangeError> =>
  Effect.flatMap(resolveChangeTarget(deps, tenantId, input), (target) => {
    const refusal = localChangeRefusal(target.settings, input.entity);
    return refusal === undefined ? Effect.succeed(target) : Effect.fail(refusal);
  });

/**
 * Refuses a change the entity cannot take (no such write, a field its record lacks or cannot
 * write, a value its schema refuses) with InvalidInput naming each field under `path`.
 */
export const refuseInvalidChange = (
  target: ChangeTarget,
  operation: PushOperation,
  fields?: Record<string, unknown>,
  path?: ReadonlyArray<string>,
): Effect.Effect<void, InvalidInput> => {
  const issues = localChangeIssues(
    { connector: target.connector.name, entityName: target.scope.entity, entity: target.entity, operation, fields },
    path,
  );
  return issues.length > 0 ? Effect.fail(new InvalidInput({ issues })) : Effect.void;
};
