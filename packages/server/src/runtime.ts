import {
  ApiKeys,
  Connections,
  ConnectorRegistry,
  type ConnectorRegistryService,
  CredentialCipher,
  Database,
  Tenants,
} from "@tandem/core";
import { Layer, ManagedRuntime } from "effect";
import type { ServerConfig } from "./config.ts";
import { loggerLayer, tracingLayer } from "./telemetry.ts";

/** Every service the server uses, wired once. */
export const appLayer = (config: ServerConfig, registry: ConnectorRegistryService) =>
  Layer.mergeAll(Tenants.layer, ApiKeys.layer({ adminKey: config.adminKey }), Connections.layer).pipe(
    Layer.provideMerge(Layer.mergeAll(CredentialCipher.layer(config.secretKey), ConnectorRegistry.layer(registry.all))),
    Layer.provideMerge(Database.layer(config.database)),
    Layer.provideMerge(Layer.mergeAll(loggerLayer(config), tracingLayer(config))),
  );

export type AppServices = Layer.Layer.Success<ReturnType<typeof appLayer>>;

/** The Effect runtime, built once at the edge of the process and disposed on shutdown. */
export type AppRuntime = ManagedRuntime.ManagedRuntime<AppServices, unknown>;

export const makeRuntime = (config: ServerConfig, registry: ConnectorRegistryService): AppRuntime =>
  ManagedRuntime.make(appLayer(config, registry));
