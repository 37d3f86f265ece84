/** A fault the fake serves instead of a normal answer. */
export type BusinessCentralFault =
  /** Answer this status with BC's error body (401 Authentication_InvalidCredentials, 5xx ...). */
  | { readonly kind: "status"; readonly status: number }
  /** Answer 429 Application_TooManyRequests, with `Retry-After` when `retryAfterSeconds` is set. */
  | { readonly kind: "rateLimit"; readonly retryAfterSeconds?: number };

/** Fault-injection and limit knobs. Mutable: tests flip them between calls. */
export interface BusinessCentralFakeKnobs {
  /** Share of API calls (0..1) answered with a random 500/502/503/504. Default 0. */
  serverErrorRate: number;
  /** Ids always served malformed in reads (a `lastModifiedDateTime` that is no date). */
  malformedIds: Set<string>;
  /**
   * Requests allowed per window per client, BC's per-user limit being 6,000 per 5 minutes.
   * Undefined disables enforcement. Default undefined.
   */
  rateLimit: { max: number; windowMs: number } | undefined;
  /**
   * What a next link's `$skiptoken` holds: the last entity's sort key, so the next page starts
   * after that key whatever happened since ("sortKey", the default), or the last entity's id, so
   * the next page starts after wherever that entity sorts now ("lastEntity": an edit of it between
   * two pages ordered by `lastModifiedDateTime` jumps the read past everything in between). BC
   * does not document which.
   */
  skipTokenNames: "sortKey" | "lastEntity";
  /** The server's page size: what a list answers without (or above) `Prefer: odata.maxpagesize`. Default 20,000. */
  maxPageSize: number;
  /**
   * Changes queued for one subscription beyond which a delivery sends one `collection`
   * notification instead of one per change. Default 1,000 (BC's documented threshold).
   */
  collectionThreshold: number;
  /** The method of the validation handshake with a notificationUrl. Default "POST". */
  handshakeMethod: "GET" | "POST";
}

export const defaultBusinessCentralKnobs = (): BusinessCentralFakeKnobs => ({
  serverErrorRate: 0,
  malformedIds: new Set(),
  rateLimit: undefined,
  skipTokenNames: "sortKey",
  maxPageSize: 20_000,
  collectionThreshold: 1_000,
  handshakeMethod: "POST",
});
