import { Database } from "@tandem/core";
import { Context, Effect, Layer } from "effect";

/**
 * How long one readiness probe answers for. `health` and `/readyz` need no key, and each probe
 * was a database round trip: a client batching `health` 2,200 times per request took another
 * tenant's `connections.list` from 7 ms to 5.7 s p50. Shared for a second, any number of probes
 * cost at most one query a second, and a load balancer still sees an outage within a second.
 */
const PROBE_TTL = "1 second";

/** Whether the database is reachable and migrated, as the public probes report it. */
export class Readiness extends Context.Tag("@tandem/server/Readiness")<
  Readiness,
  {
    /** The last probe's answer while it is fresh; else one new probe, which concurrent callers share. */
    readonly check: Effect.Effect<{ readonly ok: boolean; readonly detail: string }>;
  }
>() {
  /** Needs Database. */
  static readonly layer = Layer.effect(
    Readiness,
    Effect.gen(function* () {
      const db = yield* Database;
      // The cache holds the probe's Deferred under a lock, so callers arriving mid-probe await it.
      return { check: yield* Effect.cachedWithTTL(db.ready, PROBE_TTL) };
    }),
  );
}
