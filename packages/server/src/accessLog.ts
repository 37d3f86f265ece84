import { Effect, LogLevel, Metric, MetricBoundaries, MetricLabel } from "effect";
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
 * The access log of every route: a counter and a duration histogram by route, and an info line
 * when `LOG_LEVEL` lets info through. Bodies and headers are never logged (they may carry
 * secrets). Metrics are updated in place rather than through an Effect fiber per request: under
 * webhook load, the fibers were a visible share of the CPU.
 */
export const makeAccessLog = (runtime: AppRuntime, options: { readonly logLevel: LogLevel.LogLevel }): AccessLog => {
  // Tagged metrics by label values, made once: tagging builds a new metric key and hashes its
  // labels, per request otherwise. Routes are patterns and statuses few, so this stays small.
  const counters = new Map<string, Metric.Metric.Counter<number>>();
  const histograms = new Map<string, typeof httpDuration>();
  const counterOf = (method: string, route: string, status: number) => {
    const key = `${method} ${route} ${status}`;
    let counter = counters.get(key);
    if (counter === undefined) {
      counter = Metric.taggedWithLabels(httpRequests, [
        MetricLabel.make("method", method),
        MetricLabel.make("route", route),
        MetricLabel.make("status", String(status)),
      ]);
      counters.set(key, counter);
    }
    return counter;
  };
  const histogramOf = (method: string, route: string) => {
    const key = `${method} ${route}`;
    let histogram = histograms.get(key);
    if (histogram === undefined) {
      histogram = Metric.taggedWithLabels(httpDuration, [
        MetricLabel.make("method", method),
        MetricLabel.make("route", route),
      ]);
      histograms.set(key, histogram);
    }
    return histogram;
  };
  const logsRequests = LogLevel.greaterThanEqual(LogLevel.Info, options.logLevel);
  return ({ method, route, path, status, started }) => {
    const seconds = (performance.now() - started) / 1000;
    counterOf(method, route, status).unsafeUpdate(1, []);
    histogramOf(method, route).unsafeUpdate(seconds, []);
    if (logsRequests) {
      runtime.runFork(
        Effect.logInfo("http request").pipe(
          Effect.annotateLogs({ method, path, status, ms: Math.round(seconds * 1000) }),
        ),
      );
    }
  };
};
