/** A fault the fake serves to an API call instead of its answer. */
export type SalesforceFault =
  /** 401 `INVALID_SESSION_ID`, as when the session timed out or was revoked. */
  | { readonly kind: "sessionExpired" }
  /**
   * 403 `REQUEST_LIMIT_EXCEEDED`: the org's rolling 24-hour API request limit ("TotalRequests
   * Limit exceeded."), or with `concurrent` the limit on long-running concurrent requests.
   */
  | { readonly kind: "requestLimit"; readonly concurrent?: boolean }
  /** Any status with Salesforce's error array (500, 502, 503, 429 ...), with Retry-After when given. */
  | { readonly kind: "status"; readonly status: number; readonly retryAfterSeconds?: number }
  /** Never answer (until the client gives up, or `hangMs` passes). */
  | { readonly kind: "hang" };

/** A fault the token endpoint serves instead of a session. */
export type SalesforceTokenFault =
  /** 400 `invalid_grant`: the refresh token was revoked or expired. */
  { readonly kind: "invalidGrant" } | { readonly kind: "status"; readonly status: number };

/** Mutable knobs; tests flip them between calls. Random draws come from the fake's seeded source. */
export interface SalesforceFakeKnobs {
  /** Share of API calls (0..1) answered with a random 500/502/503. Default 0. */
  serverErrorRate: number;
  /** How long a hang lasts before the fake answers 503 anyway. Default 120,000 ms. */
  hangMs: number;
  /** Added latency per call in ms. Default 0. */
  latencyMs: number;
  /** Ids always served malformed (a SystemModstamp that is not a datetime, a name that is a number). */
  malformedIds: Set<string>;
  /**
   * The org's API request limit per rolling 24 hours, reported as `Sforce-Limit-Info: api-usage=N/M`.
   * When `enforceApiLimit` is true, calls past it answer 403 REQUEST_LIMIT_EXCEEDED. Default 15,000.
   */
  apiLimit: number;
  enforceApiLimit: boolean;
  /**
   * Smallest batch size `Sforce-Query-Options: batchSize=N` may ask for. Salesforce: 200 (and at
   * most 2,000, its default). Lower it in tests to page small data sets.
   */
  minBatchSize: number;
  /** A query locator (nextRecordsUrl) unused this long expires: 400 INVALID_QUERY_LOCATOR. Default 15 min. */
  queryLocatorTtlMs: number;
  /**
   * Open query locators kept (Salesforce: 10 per user); the oldest is dropped past that and answers
   * INVALID_QUERY_LOCATOR. A locator stays open after its last page, until it expires.
   */
  maxOpenLocators: number;
  /**
   * Refresh token rotation (a connected app setting): each grant answers a new `refresh_token`
   * and the one it was asked with stops working. Default false.
   */
  rotateRefreshTokens: boolean;
}

export const defaultSalesforceKnobs = (): SalesforceFakeKnobs => ({
  serverErrorRate: 0,
  hangMs: 120_000,
  latencyMs: 0,
  malformedIds: new Set(),
  apiLimit: 15_000,
  enforceApiLimit: false,
  minBatchSize: 200,
  queryLocatorTtlMs: 15 * 60 * 1000,
  maxOpenLocators: 10,
  rotateRefreshTokens: false,
});
