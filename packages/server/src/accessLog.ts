import { Effect, Metric, MetricBoundaries, MetricLabel } from "effect";
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

/** One served request, as the access log and the HTTP metrics record it. */
export interface ServedRequest {
  readonly method: string;
  /** The matched route pattern, not the raw path: ids in paths would explode label cardinality. */
  readonly route: string;
  readonly path: string;
  readonly status: number;
  /** `performance.now()` when the request arrived. */
  readonly started: number;
}

/** Records a served request: metrics and an access-log line (method, path, status and time only). */
export type AccessLog = (request: ServedRequest) => void;

/**
 * The access log of every route: a counter and a duration histogram by route, and an info line.
 * Bodies and headers are never logged (they may carry secrets). One fiber per request for all
 * three: under webhook load, forking was a visible share of the CPU.
 */
export const makeAccessLog =
  (runtime: AppRuntime): AccessLog =>
  ({ method, route, path, status, started }) => {
    const seconds = (performance.now() - started) / 1000;
    runtime.runFork(
      Effect.all([
        Metric.increment(
          Metric.taggedWithLabels(httpRequests, [
            MetricLabel.make("method", method),
            MetricLabel.make("route", route),
            MetricLabel.make("status", String(status)),
          ]),
        ),
        Metric.update(
          Metric.taggedWithLabels(httpDuration, [MetricLabel.make("method", method), MetricLabel.make("route", route)]),
          seconds,
        ),
        Effect.logInfo("http request").pipe(
          Effect.annotateLogs({ method, path, status, ms: Math.round(seconds * 1000) }),
        ),
      ]).pipe(Effect.asVoid),
    );
  };
