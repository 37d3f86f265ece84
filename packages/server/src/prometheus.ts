import type { SyncGauges } from "@tandem/core";
import { Metric, MetricState, Option } from "effect";
import client from "prom-client";

type PromType = "counter" | "gauge" | "histogram";

interface PromValue {
  readonly value: number;
  readonly labels: Record<string, string | number>;
  readonly metricName?: string;
}

const labelsOf = (tags: ReadonlyArray<{ readonly key: string; readonly value: string }>) =>
  Object.fromEntries(tags.map((t) => [t.key, t.value]));

const typeOf = (state: unknown): PromType | undefined =>
  MetricState.isCounterState(state)
    ? "counter"
    : MetricState.isGaugeState(state)
      ? "gauge"
      : MetricState.isHistogramState(state)
        ? "histogram"
        : undefined;

/** Current values of one Effect metric (all its tag sets) in prom-client's value format. */
const valuesOf = (name: string): Array<PromValue> =>
  Metric.unsafeSnapshot()
    .filter((pair) => pair.metricKey.name === name)
    .flatMap((pair): Array<PromValue> => {
      const labels = labelsOf(pair.metricKey.tags);
      const state = pair.metricState;
      if (MetricState.isCounterState(state) || MetricState.isGaugeState(state)) {
        const value = MetricState.isCounterState(state) ? state.count : state.value;
        return [{ value: Number(value), labels }];
      }
      if (MetricState.isHistogramState(state)) {
        // Effect's bucket counts are cumulative (values <= boundary), as Prometheus wants.
        return [
          ...state.buckets.map(([le, count]) => ({
            value: count,
            labels: { ...labels, le: Number.isFinite(le) ? le : "+Inf" },
            metricName: `${name}_bucket`,
          })),
          ...(state.buckets.some(([le]) => !Number.isFinite(le))
            ? []
            : [{ value: state.count, labels: { ...labels, le: "+Inf" }, metricName: `${name}_bucket` }]),
          { value: state.sum, labels, metricName: `${name}_sum` },
          { value: state.count, labels, metricName: `${name}_count` },
        ];
      }
      return [];
    });

/**
 * Prometheus exposition through prom-client. The engine instruments itself with
 * Effect's `Metric` (core stays free of any exporter); each scrape mirrors those
 * metrics into prom-client, which owns the text format. Gauges that live in the
 * database (queue depth, freshness) are registered by the server as prom-client
 * gauges with a `collect` that queries at scrape time, so every process reports
 * the same cluster-wide value.
 */
export const makePrometheus = (databaseGauges?: () => Promise<SyncGauges>) => {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  if (databaseGauges !== undefined) {
    // One database read per scrape feeds both gauges (each `collect` awaits the same promise).
    let pending: Promise<SyncGauges> | undefined;
    const read = () => {
      pending ??= databaseGauges().finally(() => setTimeout(() => (pending = undefined), 0));
      return pending;
    };
    new client.Gauge({
      name: "tandem_queue_jobs",
      help: "Jobs queued or running, by kind and status (cluster-wide)",
      labelNames: ["kind", "status"],
      registers: [registry],
      async collect() {
        this.reset();
        for (const j of (await read()).jobs) this.set({ kind: j.kind, status: j.status }, j.count);
      },
    });
    new client.Gauge({
      name: "tandem_freshness_seconds",
      help: "Seconds since the last successful full or delta sync, per connection and entity",
      labelNames: ["tenant", "connection", "entity"],
      registers: [registry],
      async collect() {
        this.reset();
        for (const f of (await read()).freshness) {
          if (f.secondsSinceLastSuccess !== null) {
            this.set({ tenant: f.tenantId, connection: f.connectionId, entity: f.entity }, f.secondsSinceLastSuccess);
          }
        }
      },
    });
  }
  const mirrored = new Set<string>();

  const mirrorEffectMetrics = () => {
    for (const pair of Metric.unsafeSnapshot()) {
      const name = pair.metricKey.name;
      const type = typeOf(pair.metricState);
      if (mirrored.has(name) || type === undefined || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) continue;
      mirrored.add(name);
      registry.registerMetric({
        name,
        help: Option.getOrElse(pair.metricKey.description, () => name),
        type,
        aggregator: "sum",
        get: async () => ({
          name,
          help: Option.getOrElse(pair.metricKey.description, () => name),
          type,
          values: valuesOf(name),
          aggregator: "sum",
        }),
      } as unknown as client.Metric);
    }
  };

  return {
    registry,
    contentType: registry.contentType,
    /** The exposition text for one scrape. */
    scrape: async () => {
      mirrorEffectMetrics();
      return registry.metrics();
    },
  };
};
