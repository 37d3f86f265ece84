import { MetricsReport } from "@tandem/core";
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { Effect, type Option, type Redacted } from "effect";
import { Hono } from "hono";
import type { AccessLog } from "./accessLog.ts";
import { limitBody } from "./bodyLimit.ts";
import { createContext } from "./context.ts";
import { dashboardHeaders, loadDashboardAssets } from "./dashboard.ts";
import { makeMetricsAccess } from "./metricsAccess.ts";
import { openApiDocument } from "./openapi.ts";
import { makePrometheus } from "./prometheus.ts";
import { Readiness } from "./Readiness.ts";
import { appRouter } from "./routers/_app.ts";
import type { AppRuntime } from "./runtime.ts";

/**
 * Longest request target (path and query) served. Node already refuses request heads over 16 KiB
 * with 431; below that, a GET batch of 2,200 `health` calls fitted in 15 KB. Our own clients' GETs
 * carry a small JSON input; 8 KiB is what common proxies allow.
 */
const MAX_URL_BYTES = 8192;

/**
 * The HTTP surface served by Hono: tRPC at /trpc, probes, metrics, OpenAPI and the dashboard at
 * `/`. Inbound webhooks are served ahead of it (webhookRoute.ts); both share `accessLog`.
 */
export const makeHttpApp = (
  runtime: AppRuntime,
  options: {
    readonly accessLog: AccessLog;
    readonly limits: { readonly maxBodyBytes: number; readonly maxBatchSize: number };
    readonly metricsToken: Option.Option<Redacted.Redacted<string>>;
  },
) => {
  const app = new Hono();
  const log = (effect: Effect.Effect<void>) => runtime.runFork(effect);

  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    options.accessLog({
      method: c.req.method,
      route: c.req.routePath,
      path: c.req.path,
      status: c.res.status,
      started,
    });
  });

  app.use(async (c, next) => {
    const { pathname, search } = new URL(c.req.url);
    if (pathname.length + search.length > MAX_URL_BYTES) {
      const message = `request URL longer than ${MAX_URL_BYTES} bytes: send a smaller input`;
      // Under /trpc, in tRPC's own error shape (its JSON-RPC code for BAD_REQUEST), so that a tRPC
      // client reports the message instead of failing to parse the answer.
      return pathname.startsWith("/trpc/")
        ? c.json({ error: { message, code: -32600, data: { code: "BAD_REQUEST", httpStatus: 414 } } }, 414)
        : c.json({ error: message }, 414);
    }
    await next();
  });

  app.get("/healthz", (c) => c.json({ status: "ok" }));

  app.get("/readyz", async (c) => {
    const ready = await runtime.runPromise(Effect.flatMap(Readiness, (r) => r.check));
    return c.json({ status: ready.ok ? "ready" : "not_ready", detail: ready.detail }, ready.ok ? 200 : 503);
  });

  const prometheus = makePrometheus(() => runtime.runPromise(Effect.flatMap(MetricsReport, (m) => m.gauges)));
  const mayScrape = makeMetricsAccess(runtime, options.metricsToken);
  app.get("/metrics", async (c) => {
    if (!(await mayScrape(c.req.header("authorization") ?? null))) {
      return c.json({ error: "/metrics needs Authorization: Bearer <TANDEM_METRICS_TOKEN or the admin key>" }, 401, {
        "www-authenticate": 'Bearer realm="metrics"',
      });
    }
    return c.body(await prometheus.scrape(), 200, { "content-type": prometheus.contentType });
  });

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

  // The only Hono route that reads a body (the others are GETs; webhooks have their own limit).
  app.all("/trpc/*", (c) =>
    fetchRequestHandler({
      endpoint: "/trpc",
      req: limitBody(c.req.raw, options.limits.maxBodyBytes),
      router: appRouter,
      // Refused (400) before any call runs or the context is made: each call may be a query.
      maxBatchSize: options.limits.maxBatchSize,
      createContext: ({ req, info }) => createContext(runtime, req, info),
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
