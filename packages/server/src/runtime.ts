import {
  Alerts,
  ApiKeys,
  Conflicts,
  Connections,
  ConnectorCredentials,
  ConnectorRegistry,
  type ConnectorRegistryService,
  CredentialCipher,
  Database,
  EgressPolicy,
  EntitySync,
  InboundWebhooks,
  JobQueue,
  Locks,
  MetricsReport,
  OutboundWebhooks,
  RateBudget,
  RecordStore,
  Records,
  RetryPolicy,
  RetryPolicyConfig,
  RunHistory,
  registerAlertsSchedule,
  Scheduler,
  SchedulerConfig,
  SyncJobHandlers,
  SyncJobQueue,
  SyncStatus,
  SyncTriggers,
  Tenants,
} from "@tandem/core";
import { Effect, Layer, ManagedRuntime } from "effect";
import type { ServerConfig } from "./config.ts";
import { JobWatchers } from "./JobWatchers.ts";
import { Readiness } from "./Readiness.ts";
import { loggerLayer, tracingLayer } from "./telemetry.ts";

/** The engine and everything durable around it, on one database. */
const servicesLayer = (config: ServerConfig, registry: ConnectorRegistryService) => {
  const infra = Layer.mergeAll(
    CredentialCipher.layer(config.secretKey),
    ConnectorRegistry.layer(registry.all),
    RateBudget.layer,
    RetryPolicy.layer,
    EgressPolicy.layer({ allow: config.egressAllow }),
  ).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        Database.layer(config.database),
        Layer.succeed(RetryPolicyConfig, config.retry),
        Layer.succeed(SchedulerConfig, config.schedules),
      ),
    ),
  );
  const stores = Layer.mergeAll(
    Tenants.layer,
    ApiKeys.layer({ adminKey: config.adminKey }),
    Connections.layer,
    ConnectorCredentials.layer,
    RecordStore.layer,
    RunHistory.layer,
  ).pipe(Layer.provideMerge(infra));
  // Pulls record conflicts, and conflicts emit `conflict.detected` through the outbox (a queue
  // job), so the queue and the outbox sit below the engine.
  const conflicts = Conflicts.layerNoDeps.pipe(
    Layer.provideMerge(OutboundWebhooks.layerNoDeps),
    Layer.provideMerge(JobQueue.layerNoDeps),
    Layer.provideMerge(stores),
  );
  const engine = EntitySync.layerNoDeps.pipe(Layer.provideMerge(conflicts));
  const durable = Layer.mergeAll(Scheduler.layerNoDeps, Locks.layer).pipe(Layer.provideMerge(engine));
  const syncs = Layer.mergeAll(
    SyncTriggers.layerNoDeps,
    SyncJobHandlers.layerNoDeps,
    SyncStatus.layerNoDeps,
    SyncJobQueue.layerNoDeps,
  ).pipe(Layer.provideMerge(durable));
  return Layer.mergeAll(
    Records.layer,
    InboundWebhooks.layerNoDeps,
    Alerts.layerNoDeps,
    MetricsReport.layer,
    Readiness.layer,
    JobWatchers.layer({ maxPerTenant: config.maxWatchersPerTenant }),
  ).pipe(Layer.provideMerge(syncs));
};

/**
 * The background work of a process: a queue worker for every job kind, and the
 * cron fiber. Both stop with the runtime: the worker finishes or releases its
 * jobs before the pools close (finalizers run in reverse order).
 */
const backgroundLayer = (config: ServerConfig) =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      if (!config.worker.enabled) return;
      const syncJobs = yield* SyncJobHandlers;
      const alerts = yield* Alerts;
      const queue = yield* JobQueue;
      yield* queue.worker({
        handlers: { ...syncJobs.handlers, ...alerts.handlers, ...(yield* SyncJobQueue).handlers },
        concurrency: config.worker.concurrency,
      });
      // Every process may register it: an upsert by name, and each tick fires once cluster-wide.
      yield* registerAlertsSchedule({ cron: config.schedules.alertsCron }).pipe(Effect.orDie);
      yield* (yield* Scheduler).run();
      yield* Effect.logInfo("worker and scheduler started").pipe(
        Effect.annotateLogs({ concurrency: config.worker.concurrency }),
      );
    }),
  );

/** Every service the server uses, wired once. */
export const appLayer = (config: ServerConfig, registry: ConnectorRegistryService) => {
  const services = servicesLayer(config, registry);
  return Layer.mergeAll(services, backgroundLayer(config).pipe(Layer.provide(services))).pipe(
    Layer.provideMerge(Layer.mergeAll(loggerLayer(config), tracingLayer(config))),
  );
};

export type AppServices = Layer.Layer.Success<ReturnType<typeof appLayer>>;

/** The Effect runtime, built once at the edge of the process and disposed on shutdown. */
export type AppRuntime = ManagedRuntime.ManagedRuntime<AppServices, unknown>;

export const makeRuntime = (config: ServerConfig, registry: ConnectorRegistryService): AppRuntime =>
  ManagedRuntime.make(appLayer(config, registry));
