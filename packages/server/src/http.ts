import { Database } from "@tandem/core";
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { Effect, Metric, MetricBoundaries, MetricLabel } from "effect";
import { Hono } from "hono";
import { createContext } from "./context.ts";
import { openApiDocument } from "./openapi.ts";
import { makePrometheus } from "./prometheus.ts";
import { appRouter } from "./routers/_app.ts";
import type { AppRuntime } from "./runtime.ts";

const httpRequests = Metric.counter("tandem_http_requests_total", {
  description: "HTTP requests served, by method, route and status",
  incremental: true,
});
const httpDuration = Metric.histogram(
  "tandem_http_request_duration_seconds",
  MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 14 }),
  "HTTP request duration in seconds, by method and route",
);

/** The HTTP surface: tRPC at /trpc, probes, and (later) webhooks, metrics and the dashboard. */
export const makeHttpApp = (runtime: AppRuntime) => {
  const app = new Hono();
  const log = (effect: Effect.Effect<void>) => runtime.runFork(effect);

  // Access log: method, path, status and time only. Bodies and headers may carry secrets.
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    const seconds = (performance.now() - started) / 1000;
    // The matched route pattern, not the raw path: ids in paths would explode label cardinality.
    const route = c.req.routePath;
    log(
      Effect.all([
        Metric.increment(
          Metric.taggedWithLabels(httpRequests, [
            MetricLabel.make("method", c.req.method),
            MetricLabel.make("route", route),
            MetricLabel.make("status", String(c.res.status)),
          ]),
        ),
        Metric.update(
          Metric.taggedWithLabels(httpDuration, [
            MetricLabel.make("method", c.req.method),
            MetricLabel.make("route", route),
          ]),
          seconds,
        ),
      ]).pipe(Effect.asVoid),
    );
    log(
      Effect.logInfo("http request").pipe(
        Effect.annotateLogs({
          method: c.req.method,
          path: c.req.path,
          status: c.res.status,
          ms: Math.round(performance.now() - started),
        }),
      ),
    );
  });

  app.get("/healthz", (c) => c.json({ status: "ok" }));

  app.get("/readyz", async (c) => {
    const ready = await runtime.runPromise(Effect.flatMap(Database, (db) => db.ready));
    return c.json({ status: ready.ok ? "ready" : "not_ready", detail: ready.detail }, ready.ok ? 200 : 503);
  });

  const prometheus = makePrometheus();
  app.get("/metrics", async (c) => c.body(await prometheus.scrape(), 200, { "content-type": prometheus.contentType }));

  const openapi = openApiDocument(appRouter, { version: "0.1.0" });
  app.get("/openapi.json", (c) => c.json(openapi));

  app.all("/trpc/*", (c) =>
    fetchRequestHandler({
      endpoint: "/trpc",
      req: c.req.raw,
      router: appRouter,
      createContext: ({ req }) => createContext(runtime, req),
      onError: ({ error, path }) => {
        if (error.code === "INTERNAL_SERVER_ERROR") {
          log(
            Effect.logError("procedure error").pipe(Effect.annotateLogs({ path: path ?? "", message: error.message })),
          );
        }
      },
    }),
  );

  return app;
};
