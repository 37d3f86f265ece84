import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { getRequestListener } from "@hono/node-server";
import { ApiKeys, ConnectorRegistry } from "@tandem/core";
import { Cause, Effect, Exit, Option } from "effect";
import { makeAccessLog } from "./accessLog.ts";
import { builtinConnectors } from "./builtins.ts";
import { readOrCreateKeyFile, type ServerConfig, StartupError } from "./config.ts";
import { makeHttpApp } from "./http.ts";
import { type AppRuntime, makeRuntime } from "./runtime.ts";
import { makeWebhookRoute } from "./webhookRoute.ts";

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  /** The process's Effect runtime (for embedding and tests: run engine effects against the same services). */
  readonly runtime: AppRuntime;
  /** Stops accepting connections, lets in-flight requests finish, then releases every resource. */
  readonly close: () => Promise<void>;
}

/** Plugin specifiers are package names, or paths relative to the working directory. */
const importPlugin = (specifier: string) =>
  import(
    specifier.startsWith(".") || isAbsolute(specifier) ? pathToFileURL(resolve(specifier)).href : specifier
  ) as Promise<unknown>;

/** One line for the operator: a typed failure's message, else the defect's. */
const oneLine = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause);
  const error = Option.isSome(failure) ? failure.value : Cause.squash(cause);
  const message = (error as { message?: unknown } | null)?.message;
  return (
    (typeof message === "string" && message.length > 0 ? message : String(error)).split("\n")[0] ?? "unknown error"
  );
};

/**
 * Starts Tandem: loads plugins, connects and migrates the database, makes sure an
 * admin key exists, and serves HTTP. Fails with a StartupError whose message is
 * one line, never a stack trace.
 */
export const startServer = async (
  config: ServerConfig,
  options: { readonly onAdminKeyCreated?: (key: string, path: string) => void } = {},
): Promise<RunningServer> => {
  const registry = await Effect.runPromiseExit(
    ConnectorRegistry.load(config.connectorSpecifiers, builtinConnectors, importPlugin),
  );
  if (Exit.isFailure(registry)) {
    const failure = Cause.failureOption(registry.cause);
    throw new StartupError({
      message: Option.isSome(failure)
        ? `connector plugin "${failure.value.specifier}" failed to load: ${failure.value.message}`
        : oneLine(registry.cause),
    });
  }

  const runtime = makeRuntime(config, registry.value);
  const built = await Effect.runPromiseExit(runtime.runtimeEffect);
  if (Exit.isFailure(built)) {
    await runtime.dispose().catch(() => {});
    throw new StartupError({ message: oneLine(built.cause) });
  }

  const adminKey = await runtime.runPromise(Effect.flatMap(ApiKeys, (keys) => keys.bootstrapAdminKey()));
  if (Option.isSome(adminKey)) {
    const file = readOrCreateKeyFile(config.dataDir, "admin.key", () => adminKey.value);
    options.onAdminKeyCreated?.(adminKey.value, file.path);
  }

  const accessLog = makeAccessLog(runtime, { logLevel: config.logLevel });
  const app = makeHttpApp(runtime, { accessLog, limits: config.api, metricsToken: config.metricsToken });
  const webhooks = makeWebhookRoute(runtime, { maxBytes: config.webhookMaxBytes, accessLog });
  const hono = getRequestListener(app.fetch);
  const server = createServer((request, response) => {
    if (!webhooks(request, response)) void hono(request, response);
  });
  await new Promise<void>((resolveListening, reject) => {
    server.once("error", (e) =>
      reject(new StartupError({ message: `cannot listen on ${config.host}:${config.port}: ${e.message}` })),
    );
    server.listen(config.port, config.host, () => resolveListening());
  }).catch(async (e) => {
    await runtime.dispose();
    throw e;
  });
  const port = (server.address() as AddressInfo).port;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${config.host}:${port}`,
    port,
    runtime,
    close: () => {
      closing ??= (async () => {
        await new Promise<void>((done) => {
          server.close(() => done());
          // Idle keep-alive sockets would hold close() open until they time out.
          server.closeIdleConnections();
        });
        await runtime.dispose();
      })();
      return closing;
    },
  };
};
