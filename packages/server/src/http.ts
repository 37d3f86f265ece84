import { Database, InboundWebhooks, SyncMetrics } from "@tandem/core";
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { Cause, Effect, Exit, Metric, MetricBoundaries, MetricLabel, Option } from "effect";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createContext } from "./context.ts";
import { dashboardHeaders, loadDashboardAssets } from "./dashboard.ts";
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

/** The HTTP surface: tRPC at /trpc, probes, inbound webhooks, metrics, OpenAPI and the dashboard at `/`. */
export const makeHttpApp = (runtime: AppRuntime, options: { readonly webhookMaxBytes: number }) => {
  const app = new Hono();
  const log = (effect: Effect.Effect<void>) => runtime.runFork(effect);

  // Access log: method, path, status and time only. Bodies and headers may carry secrets.
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    const seconds = (performance.now() - started) / 1000;
    // The matched route pattern, not the raw path: ids in paths would explode label cardinality.
    const route = c.req.routePath;
    // One fiber per request for both: under webhook load, forking was a visible share of the CPU.
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
        Effect.logInfo("http request").pipe(
          Effect.annotateLogs({
            method: c.req.method,
            path: c.req.path,
            status: c.res.status,
            ms: Math.round(seconds * 1000),
          }),
        ),
      ]).pipe(Effect.asVoid),
    );
  });

  app.get("/healthz", (c) => c.json({ status: "ok" }));

  app.get("/readyz", async (c) => {
    const ready = await runtime.runPromise(Effect.flatMap(Database, (db) => db.ready));
    return c.json({ status: ready.ok ? "ready" : "not_ready", detail: ready.detail }, ready.ok ? 200 : 503);
  });

  /**
   * Inbound vendor webhooks. The event is stored (with its job) before the 2xx, so an
   * acknowledged event survives a crash; a vendor retrying after a 5xx is deduplicated
   * by event id. GET (and a POST the connector recognizes) may be a subscription handshake.
   */
  app.on(
    ["GET", "POST"],
    "/webhooks/:connector/:connectionId",
    bodyLimit({
      maxSize: options.webhookMaxBytes,
      onError: (c) => c.json({ error: `payload larger than ${options.webhookMaxBytes} bytes` }, 413),
    }),
    async (c) => {
      const { connector, connectionId } = c.req.param();
      if (!/^[0-9a-f-]{36}$/i.test(connectionId)) return c.json({ error: "unknown webhook endpoint" }, 404);
      const request = { method: c.req.method, url: c.req.url, headers: c.req.raw.headers, rawBody: await c.req.text() };
      const exit = await runtime.runPromiseExit(
        // Its span is InboundWebhooks.receive.
        Effect.flatMap(InboundWebhooks, (inbound) => inbound.receive(connector, connectionId, request)),
      );
      if (Exit.isSuccess(exit)) {
        const { _tag, ...answer } = exit.value;
        return _tag === "Receipt" ? c.json(answer, 200) : c.body(exit.value.body, exit.value.status as 200);
      }
      const failure = Cause.failureOption(exit.cause);
      if (Option.isSome(failure)) {
        const error = failure.value as { readonly _tag: string; readonly message: string };
        const statusByTag: Record<string, 400 | 401 | 404> = {
          ResourceNotFound: 404,
          WebhookRejected: 401,
          MalformedWebhook: 400,
        };
        return c.json({ error: error.message }, statusByTag[error._tag] ?? 400);
      }
      log(Effect.logError("webhook intake failed", exit.cause));
      return c.json({ error: "internal error; retry later" }, 500);
    },
  );

  const prometheus = makePrometheus(() => runtime.runPromise(Effect.flatMap(SyncMetrics, (m) => m.gauges)));
  app.get("/metrics", async (c) => c.body(await prometheus.scrape(), 200, { "content-type": prometheus.contentType }));

  const openapi = openApiDocument(appRouter, { version: "0.1.0" });
  app.get("/openapi.json", (c) => c.json(openapi));

  // The operator dashboard: static files, read once; the page calls /trpc with the key typed into it.
  const dashboard = loadDashboardAssets();
  const serveAsset = (name: string) => {
    const asset = dashboard.get(name);
    return asset === undefined
      ? new Response("not found", { status: 404, headers: { "content-type": "text/plain; charset=utf-8" } })
      : new Response(asset.body, { status: 200, headers: { ...dashboardHeaders, "content-type": asset.contentType } });
  };
  app.get("/", () => serveAsset("index.html"));
  // Only names in the asset list resolve, so `..` or encoded slashes reach nothing else.
  app.get("/dashboard/:file", (c) => serveAsset(c.req.param("file")));

  app.all("/trpc/*", (c) =>
    fetchRequestHandler({
      endpoint: "/trpc",
      req: c.req.raw,
      router: appRouter,
      createContext: ({ req, info }) => createContext(runtime, req, info.connectionParams),
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
