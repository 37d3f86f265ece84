import {
  type AnyConnector,
  type ConnectorContext,
  type EntityDefinition,
  rateLimitPolicyOf,
} from "@tandem/connector-sdk";
import { EgressPolicy, type RateBudget } from "@tandem/connector-sdk/runtime";
import { type Context, Effect, type Scope } from "effect";
import type { ConnectorCredentials } from "../connector/ConnectorCredentials.ts";
import type { ResourceNotFound } from "../errors/Errors.ts";
import type { RecordScope } from "../store/RecordStore.ts";
import type { Connections } from "../tenancy/Connections.ts";
import type { EffectiveEntitySettings } from "../tenancy/syncSettings.ts";
import { settledEntity } from "./entitySettings.ts";
import { EntityNotSupported, InvalidPage, type SyncTarget } from "./SyncRun.ts";

/** One connection entity, ready to sync: its connector, definition, record scope and connector context. */
export interface ResolvedEntity {
  readonly connector: AnyConnector;
  /** The definition under the connection's settings (conflict policy, critical fields, push interval). */
  readonly entity: EntityDefinition<any, any>;
  /** The connection's effective settings of the entity (see tenancy/syncSettings.ts). */
  readonly settings: EffectiveEntitySettings;
  readonly scope: RecordScope;
  readonly ctx: ConnectorContext<any>;
}

export interface ResolveEntityDeps {
  readonly connections: Context.Tag.Service<Connections>;
  readonly budget: Context.Tag.Service<RateBudget>;
  readonly credentials: Context.Tag.Service<ConnectorCredentials>;
}

/**
 * The context a connector's functions get for one connection: the engine's HTTP client on the
 * connection's rate budget, and a signal aborted when the scope closes. The one place the
 * engine builds it, for every strategy and for `check`.
 */
export const connectorContextFor = (
  { budget, credentials }: Pick<ResolveEntityDeps, "budget" | "credentials">,
  connectionId: string,
  connector: AnyConnector,
  config: unknown,
): Effect.Effect<ConnectorContext<any>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const bucket = yield* budget.forConnection(connectionId, rateLimitPolicyOf(connector, config));
    const controller = yield* Effect.acquireRelease(
      Effect.sync(() => new AbortController()),
      (c) => Effect.sync(() => c.abort()),
    );
    return yield* credentials.contextFor(connectionId, connector, config, bucket, controller.signal);
  });

/** Resolves the connection and its entity, with a connector context aborted when the scope closes. */
export const resolveEntity = (
  deps: ResolveEntityDeps,
  target: SyncTarget,
): Effect.Effect<ResolvedEntity, EntityNotSupported | ResourceNotFound, Scope.Scope> =>
  Effect.gen(function* () {
    const connection = yield* deps.connections.resolve(target.tenantId, target.connectionId);
    const { connector, config } = connection;
    const settled = settledEntity(connection, target.entity, yield* EgressPolicy);
    if (settled === undefined) return yield* noSuchEntity(connector, target.entity);
    const ctx = yield* connectorContextFor(deps, target.connectionId, connector, config);
    return {
      connector,
      entity: settled.entity,
      settings: settled.settings,
      scope: target,
      ctx,
    } satisfies ResolvedEntity;
  });

/** The connector has no entity of that name. */
export const noSuchEntity = (connector: AnyConnector, entity: string) =>
  new EntityNotSupported({
    connector: connector.name,
    entity,
    message: `connector "${connector.name}" has no entity "${entity}"`,
  });

/** The entity lacks what an operation needs (`get`, `readIds`, `write.update`). */
export const unsupported = (r: ResolvedEntity, message: string) =>
  new EntityNotSupported({ connector: r.connector.name, entity: r.scope.entity, message });

export const invalidPage = (r: ResolvedEntity, message: string) =>
  new InvalidPage({ connector: r.connector.name, entity: r.scope.entity, message });
