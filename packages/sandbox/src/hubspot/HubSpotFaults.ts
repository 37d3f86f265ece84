/** A fault the fake injects instead of (or into) a normal answer. */
export type HubSpotFault =
  /** Answer this status with HubSpot's error body (e.g. 500, 502, 503, 504). */
  | { readonly kind: "status"; readonly status: number }
  /** Never answer (until the client gives up, or `hangMs` passes). */
  | { readonly kind: "hang" }
  /** Answer 429 as if the 10-second window were spent. */
  | { readonly kind: "rateLimit"; readonly retryAfterSeconds?: number };

/**
 * Fault-injection and limit knobs. Mutable: tests flip them between calls.
 * Random draws come from the fake's seeded random source, so runs replay.
 */
export interface HubSpotFakeKnobs {
  /** Share of API calls (0..1) answered with a random 500/502/503/504. Default 0. */
  serverErrorRate: number;
  /** Share of API calls (0..1) that hang (a client timeout). Default 0. */
  hangRate: number;
  /** How long a hang lasts before the fake answers 504 anyway. Default 120,000 ms. */
  hangMs: number;
  /** Added latency per call, fixed or a [min, max] range in ms. Default 0. */
  latencyMs: number | readonly [number, number];
  /** Share of records (0..1) served malformed in reads. Default 0. */
  malformedRate: number;
  /** Ids always served malformed (deterministic tests). */
  malformedIds: Set<string>;
  /**
   * The 10-second rolling window (HubSpot's TEN_SECONDLY_ROLLING policy): `max` calls per
   * `intervalMs`. Undefined disables enforcement (headers still report nominal values). Default undefined.
   */
  rateLimit: { max: number; intervalMs: number } | undefined;
  /** Search calls allowed per rolling second (HubSpot: about 5); undefined disables it. Default undefined. */
  searchPerSecond: number | undefined;
  /** Daily quota; undefined disables it. Default undefined. */
  dailyLimit: number | undefined;
  /** Search lag: objects modified less than this long ago are not yet searchable. Default 0. */
  searchLagMs: number;
  /**
   * How search orders objects its one sorting rule leaves tied (HubSpot does not document it):
   * by ascending or descending numeric id. Default "id" (ascending).
   */
  searchTieOrder: "id" | "id-descending";
  /** Results one search query can page through before `after` answers 400. Default 10,000 (HubSpot's). */
  searchResultCap: number;
  /**
   * Largest `limit` the list endpoint accepts. Default 100 (HubSpot's cap). The benchmark raises
   * it for its large-page variant, so that what it measures is the consumer, not the page size.
   */
  listMaxLimit: number;
}

export const defaultHubSpotKnobs = (): HubSpotFakeKnobs => ({
  serverErrorRate: 0,
  hangRate: 0,
  hangMs: 120_000,
  latencyMs: 0,
  malformedRate: 0,
  malformedIds: new Set(),
  rateLimit: undefined,
  searchPerSecond: undefined,
  dailyLimit: undefined,
  searchLagMs: 0,
  searchTieOrder: "id",
  searchResultCap: 10_000,
  listMaxLimit: 100,
});

/**
 * Corrupts a wire object the way real integrations meet bad data: a timestamp that is not a
 * date, a property that is not a string, or a missing properties map. The id stays intact so
 * the consumer can report which record was bad.
 */
export const corruptHubSpotObject = (object: Record<string, unknown>, draw: number): Record<string, unknown> => {
  const variant = Math.floor(draw * 3);
  if (variant === 0) return { ...object, updatedAt: "last tuesday" };
  if (variant === 1) {
    const properties = { ...(object.properties as Record<string, unknown>) };
    const first = Object.keys(properties).find((name) => name !== "hs_object_id") ?? "hs_object_id";
    properties[first] = 12345;
    return { ...object, properties };
  }
  return { ...object, properties: null };
};
