import {
  Alerts,
  type ConnectorRegistryService,
  Engine,
  JobQueue,
  RecordEvents,
  registerAlertsSchedule,
  Scheduler,
  SyncJobHandlers,
  SyncJobQueue,
} from "@tandem/core";
import { Effect, Layer, ManagedRuntime } from "effect";
import type { ServerConfig } from "./config.ts";
import { JobWatchers } from "./JobWatchers.ts";
import { Readiness } from "./Readiness.ts";
import { loggerLayer, tracingLayer } from "./telemetry.ts";

/** The engine and everything durable around it, on one database, plus the server's own services. */
const servicesLayer = (config: ServerConfig, registry: ConnectorRegistryService) =>
  Layer.mergeAll(Readiness.layer, JobWatchers.layer({ maxPerTenant: config.maxWatchersPerTenant })).pipe(
    Layer.provideMerge(
      Engine.layer({
        database: config.database,
        secretKey: config.secretKey,
        connectors: registry.all,
        retry: config.retry,
        egress: { allow: config.egressAllow },
        adminKey: config.adminKey,
        schedules: config.schedules,
        deletionGuard: config.deletionGuard,
        push: config.push,
      }),
    ),
  );

/**
 * The background work of a process: a queue worker for every job kind, the cron
 * fiber and the record event dispatcher. All stop with the runtime: the worker finishes or
 * releases its jobs before the pools close (finalizers run in reverse order).
 */
const backgroundLayer = (config: ServerConfig) =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      if (!config.worker.enabled) return;
      const syncJobs = yield* SyncJobHandlers;
      const registeredSyncJobs = yield* SyncJobQueue;
      const alerts = yield* Alerts;
      const queue = yield* JobQueue;
      yield* queue.worker({
        handlers: { ...syncJobs.handlers, ...alerts.handlers, ...registeredSyncJobs.handlers },
        concurrency: config.worker.concurrency,
      });
      // Every process may register it: an upsert by name, and each tick fires once cluster-wide.
      yield* registerAlertsSchedule({ cron: config.schedules.alertsCron }).pipe(Effect.orDie);
      yield* (yield* Scheduler).run();
      // Outbound `record.*` events from the change feed; each scope's cursor has one dispatcher cluster-wide.
      yield* (yield* RecordEvents).run();
      yield* Effect.logInfo("worker, scheduler and record event dispatcher started").pipe(
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
