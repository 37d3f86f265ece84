import type { AnyConnector } from "@tandem/connector-sdk";
import { EgressPolicy, type EgressPolicyOptions } from "@tandem/connector-sdk/runtime";
import { Layer, Option, type Redacted } from "effect";
import { ConnectorCredentials } from "./connector/ConnectorCredentials.ts";
import { ConnectorRegistry } from "./connector/ConnectorRegistry.ts";
import { RateBudgets } from "./connector/RateBudgets.ts";
import { Database, type DatabaseConfig, type DatabaseStartupError } from "./db/Database.ts";
import { Alerts } from "./ops/Alerts.ts";
import { MetricsReport } from "./ops/MetricsReport.ts";
import { RunHistory } from "./ops/RunHistory.ts";
import { SyncStatus } from "./ops/SyncStatus.ts";
import { JobQueue } from "./queue/JobQueue.ts";
import { Locks } from "./queue/Locks.ts";
import { RetryPolicy, RetryPolicyConfig, type RetryPolicyOptions } from "./queue/RetryPolicy.ts";
import { Scheduler, SchedulerConfig, type SchedulerOptions } from "./queue/Scheduler.ts";
import { Conflicts } from "./store/Conflicts.ts";
import { DeletionGuardConfig, type DeletionGuardLimits, DeletionQuarantine } from "./store/DeletionQuarantine.ts";
import { PushOutbox } from "./store/PushOutbox.ts";
import { RecordStore } from "./store/RecordStore.ts";
import { Records } from "./store/Records.ts";
import { EntitySync } from "./sync/EntitySync.ts";
import { LocalChanges } from "./sync/LocalChanges.ts";
import { PushConfig, type PushOptions } from "./sync/push/PushConfig.ts";
import { SyncJobHandlers } from "./sync/SyncJobHandlers.ts";
import { SyncJobQueue } from "./sync/SyncJobQueue.ts";
import { SyncTriggers } from "./sync/SyncTriggers.ts";
import { ApiKeys, ApiKeysConfig } from "./tenancy/ApiKeys.ts";
import { Connections } from "./tenancy/Connections.ts";
import { CredentialCipher } from "./tenancy/CredentialCipher.ts";
import { Tenants } from "./tenancy/Tenants.ts";
import { InboundWebhooks } from "./webhooks/InboundWebhooks.ts";
import { OutboundWebhooks } from "./webhooks/OutboundWebhooks.ts";
import { RecordEvents } from "./webhooks/RecordEvents.ts";

/** What the roots of the engine need: everything else is derived from the database and these. */
export interface EngineConfig<E = never> {
  /** Where the engine keeps its state, or a Database layer of the caller's (a test database, a wrapped one). */
  readonly database: DatabaseConfig | Layer.Layer<Database, E>;
  /** Encrypts stored credentials; every process sharing the database needs the same key. */
  readonly secretKey: Redacted.Redacted<Buffer>;
  readonly connectors: ReadonlyArray<AnyConnector>;
  readonly retry?: RetryPolicyOptions;
  /** Without it, the EgressPolicy reference's default applies. */
  readonly egress?: EgressPolicyOptions;
  readonly adminKey?: Option.Option<Redacted.Redacted<string>>;
  readonly schedules?: SchedulerOptions;
  /** The mass-deletion guard's thresholds; each defaults to `DEFAULT_GUARD_LIMITS`. */
  readonly deletionGuard?: Partial<DeletionGuardLimits>;
  /** How local changes are pushed (the push interval, batch size...); defaults in PushOptions. */
  readonly push?: PushOptions;
}

/** The services Engine.layer provides. */
export type EngineServices = Layer.Layer.Success<ReturnType<typeof Engine.layer>>;

const databaseLayer = <E>(
  database: DatabaseConfig | Layer.Layer<Database, E>,
): Layer.Layer<Database, E | DatabaseStartupError> => ("kind" in database ? Database.layer(database) : database);

/**
 * The one composition of the engine's service graph. The server, the testkit and the bench build
 * from it, so a service's dependencies are wired here and nowhere else. Each root is a layer of its
 * own (`Engine.roots`) so a caller can swap one, e.g. a Database that counts statements; the services
 * above the roots are built once per runtime (one pool, one JobQueue), since each layer below is
 * provided once through `provideMerge`.
 */
export const Engine = {
  /** The roots: the database, the credential cipher, the connectors, retry, egress and rate budgets. */
  roots: <E>(config: EngineConfig<E>) => {
    const egress = config.egress === undefined ? Layer.empty : EgressPolicy.layer(config.egress);
    return Layer.mergeAll(
      CredentialCipher.layer(config.secretKey),
      ConnectorRegistry.layer(config.connectors),
      // One budget per connection across the cluster on PostgreSQL, in memory on PGlite.
      RateBudgets.layerNoDeps,
      RetryPolicy.layer,
      Layer.succeed(ApiKeysConfig, { adminKey: config.adminKey ?? Option.none() }),
      egress,
    ).pipe(
      Layer.provideMerge(databaseLayer(config.database)),
      Layer.provideMerge(Layer.succeed(RetryPolicyConfig, config.retry ?? {})),
      Layer.provideMerge(Layer.succeed(SchedulerConfig, config.schedules ?? {})),
      Layer.provideMerge(Layer.succeed(DeletionGuardConfig, config.deletionGuard ?? {})),
      Layer.provideMerge(Layer.succeed(PushConfig, config.push ?? {})),
    );
  },

  /** Every core service over the given roots. */
  services: <E>(_config: EngineConfig<E>) => {
    // Composed from each service's layerNoDeps, each provided once, so every service shares one
    // instance of what it needs (one JobQueue with its in-process wake-ups, one outbox).
    const stores = Layer.mergeAll(
      Tenants.layer,
      ApiKeys.layerNoDeps,
      Connections.layer,
      ConnectorCredentials.layerNoDeps,
      RecordStore.layerNoDeps,
      PushOutbox.layerNoDeps,
      RunHistory.layerNoDeps,
    );
    // Pulls record conflicts, and conflicts emit `conflict.detected` through the outbox (a queue
    // job), so the queue and the outbox sit below the engine; so does the mass-deletion guard,
    // whose held deletions ask for an alert evaluation (a queue job).
    const conflicts = Layer.mergeAll(Conflicts.layerNoDeps, DeletionQuarantine.layerNoDeps).pipe(
      Layer.provideMerge(OutboundWebhooks.layerNoDeps),
      Layer.provideMerge(JobQueue.layerNoDeps),
      Layer.provideMerge(stores),
    );
    // The engine's initial matching takes a lock (drains of one entity wait for it).
    const locks = Locks.layerNoDeps.pipe(Layer.provideMerge(conflicts));
    const engine = EntitySync.layerNoDeps.pipe(Layer.provideMerge(locks));
    const durable = Scheduler.layerNoDeps.pipe(Layer.provideMerge(engine));
    // Local changes queue push drains and take record locks; the triggers and handlers use them.
    const local = LocalChanges.layerNoDeps.pipe(Layer.provideMerge(durable));
    const syncs = Layer.mergeAll(
      SyncTriggers.layerNoDeps,
      SyncJobHandlers.layerNoDeps,
      SyncStatus.layerNoDeps,
      SyncJobQueue.layerNoDeps,
    ).pipe(Layer.provideMerge(local));
    return Layer.mergeAll(
      Records.layer,
      InboundWebhooks.layerNoDeps,
      RecordEvents.layerNoDeps,
      Alerts.layerNoDeps,
      MetricsReport.layer,
    ).pipe(Layer.provideMerge(syncs));
  },

  /** Every core service with its roots, from `config`. */
  layer: <E>(config: EngineConfig<E>) => Engine.services(config).pipe(Layer.provideMerge(Engine.roots(config))),
};
