import { Database, SyncMetrics } from "@tandem/core";
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { Effect } from "effect";
import { Hono } from "hono";
import type { AccessLog } from "./accessLog.ts";
import { createContext } from "./context.ts";
import { dashboardHeaders, loadDashboardAssets } from "./dashboard.ts";
import { openApiDocument } from "./openapi.ts";
import { makePrometheus } from "./prometheus.ts";
import { appRouter } from "./routers/_app.ts";
import type { AppRuntime } from "./runtime.ts";

/**
 * The HTTP surface served by Hono: tRPC at /trpc, probes, metrics, OpenAPI and the dashboard at
 * `/`. Inbound webhooks are served ahead of it (webhookRoute.ts); both share `accessLog`.
 */
export const makeHttpApp = (runtime: AppRuntime, options: { readonly accessLog: AccessLog }) => {
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

  app.get("/healthz", (c) => c.json({ status: "ok" }));

  app.get("/readyz", async (c) => {
    const ready = await runtime.runPromise(Effect.flatMap(Database, (db) => db.ready));
    return c.json({ status: ready.ok ? "ready" : "not_ready", detail: ready.detail }, ready.ok ? 200 : 503);
  });

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
