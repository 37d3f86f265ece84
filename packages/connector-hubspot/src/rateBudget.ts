/**
 * HubSpot's rate budget as its response headers state it. HubSpot sends, on normal calls,
 * `X-HubSpot-RateLimit-Max`, `-Remaining` and `-Interval-Milliseconds` (the 10-second rolling
 * window, 100-190 calls by tier) and `-Daily` / `-Daily-Remaining` (the daily quota).
 * See https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details
 */
export interface HubSpotRateBudget {
  /** Calls allowed per interval. */
  readonly max: number;
  /** Calls left in the current interval. */
  readonly remaining: number;
  /** The rolling window's length (10,000 ms for HubSpot's TEN_SECONDLY_ROLLING policy). */
  readonly intervalMs: number;
  readonly daily?: number;
  readonly dailyRemaining?: number;
}

const numberHeader = (headers: Headers, name: string): number | undefined => {
  const value = headers.get(name);
  if (value === null || value.trim() === "") return undefined;
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : undefined;
};

/**
 * Reads HubSpot's budget from a response's headers, or undefined when they are absent
 * (some endpoints, e.g. search and OAuth, omit them). Meant for the engine's per-connection
 * token bucket (`makeConnectorHttp({ observe })`), to be wired as the contract's rate-limit
 * member once it exists.
 *
 * @example
 * makeConnectorHttp({ observe: (headers) => { const b = hubSpotRateBudget(headers); if (b) bucket.update(b) } })
 */
export const hubSpotRateBudget = (headers: Headers): HubSpotRateBudget | undefined => {
  const max = numberHeader(headers, "x-hubspot-ratelimit-max");
  const remaining = numberHeader(headers, "x-hubspot-ratelimit-remaining");
  const intervalMs = numberHeader(headers, "x-hubspot-ratelimit-interval-milliseconds");
  if (max === undefined || remaining === undefined || intervalMs === undefined) return undefined;
  const daily = numberHeader(headers, "x-hubspot-ratelimit-daily");
  const dailyRemaining = numberHeader(headers, "x-hubspot-ratelimit-daily-remaining");
  return {
    max,
    remaining,
    intervalMs,
    ...(daily !== undefined ? { daily } : {}),
    ...(dailyRemaining !== undefined ? { dailyRemaining } : {}),
  };
};

/**
 * The connection budget for HubSpot (the contract's `rateLimit` member).
 * 9 requests/s stays under the lowest private-app tier (100 per rolling 10 s); the headers then
 * teach the bucket the portal's real window. Search has its own, lower limit (about 5/s), which
 * its 429s (`RateLimited`) enforce.
 */
export const hubSpotRateLimit = {
  requestsPerSecond: 9,
  burst: 10,
  fromHeaders: (headers: Headers) => {
    const budget = hubSpotRateBudget(headers);
    if (budget === undefined) return undefined;
    return {
      remaining: budget.remaining,
      // HubSpot's window rolls; when it is spent, a full interval is the safe wait.
      resetAfterMs: budget.remaining === 0 ? budget.intervalMs : undefined,
      limit: budget.max,
      windowMs: budget.intervalMs,
    };
  },
} as const;

/**
 * A connection's budget: HubSpot's default policy, unless its config sets `requestsPerSecond`
 * (then that rate with a one-second burst, and no header hints: the operator's number wins).
 */
export const hubSpotRateLimitFor = (config: { readonly requestsPerSecond?: number | undefined }) =>
  config.requestsPerSecond === undefined
    ? hubSpotRateLimit
    : { requestsPerSecond: config.requestsPerSecond, burst: Math.max(1, Math.ceil(config.requestsPerSecond)) };
