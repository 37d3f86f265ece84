import { Otlp } from "@effect/opentelemetry";
import { FetchHttpClient } from "@effect/platform";
import { Context, FiberRef, FiberRefs, HashMap, Layer, Logger, Option, Tracer } from "effect";
import type { ServerConfig } from "./config.ts";

/**
 * JSON lines on stdout, like Effect's json logger, plus the current trace and span
 * ids so a log line can be found from its trace (and the reverse).
 */
const jsonWithTraceLogger = Logger.make((options) => {
  const context = FiberRefs.getOrDefault(options.context, FiberRef.currentContext);
  const span = Context.getOption(context, Tracer.ParentSpan);
  const annotations = Object.fromEntries(HashMap.toEntries(options.annotations));
  const message = Array.isArray(options.message) && options.message.length === 1 ? options.message[0] : options.message;
  const line: Record<string, unknown> = {
    timestamp: options.date.toISOString(),
    level: options.logLevel.label,
    message,
    ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    ...(Option.isSome(span) ? { traceId: span.value.traceId, spanId: span.value.spanId } : {}),
  };
  if (options.cause._tag !== "Empty") line.cause = String(options.cause);
  globalThis.console.log(JSON.stringify(line));
});

/**
 * Structured logs filtered by LOG_LEVEL. Request inputs are never logged, at any level. Effect logs
 * every failed root fiber's whole cause at debug ("Fiber terminated with an unhandled error"), and
 * each API call runs in one: a rejected `connections.create` had its submitted config, secret
 * included, in that line (schema errors quote the value they refuse). Failures are logged where
 * they are handled instead: a procedure's defects by `runProcedure`, a job's errors in its attempts.
 */
export const loggerLayer = (config: Pick<ServerConfig, "logLevel">) =>
  Layer.mergeAll(
    Logger.replace(Logger.defaultLogger, jsonWithTraceLogger),
    Logger.minimumLogLevel(config.logLevel),
    Layer.setUnhandledErrorLogLevel(Option.none()),
  );

/**
 * Spans exported over OTLP/HTTP (JSON) when OTEL_EXPORTER_OTLP_ENDPOINT is set; every
 * `Effect.fn` service method, sync run, page, external call and job is a span.
 * Without the variable, spans still exist (trace ids in logs) but go nowhere.
 */
export const tracingLayer = (config: Pick<ServerConfig, "otlpEndpoint">) =>
  Option.match(config.otlpEndpoint, {
    onNone: () => Layer.empty,
    onSome: (baseUrl) =>
      Otlp.layerJson({
        baseUrl,
        resource: { serviceName: "tandem" },
        // Keep our stdout logger: OTLP carries spans; logs stay JSON lines on stdout.
        replaceLogger: undefined,
        tracerExportInterval: "1 second",
      }).pipe(Layer.provide(FetchHttpClient.layer)),
  });
