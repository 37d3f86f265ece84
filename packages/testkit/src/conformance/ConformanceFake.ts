import type { InboundWebhookRequest } from "@tandem/connector-sdk";
import type { HttpHandler } from "msw";

/** A failure the fake serves to the next API call, whatever it is. */
export type ConformanceFailure =
  | { readonly status: 401 }
  | {
      readonly status: 429;
      /** Sent as Retry-After; the connector must report it as `RateLimited.retryAfterMs`. */
      readonly retryAfterSeconds: number;
    };

/** A signed inbound webhook request and the time to verify it at. */
export interface ConformanceWebhook {
  readonly request: InboundWebhookRequest;
  /** The receiver's clock when the request arrives (signatures are checked against it). */
  readonly now: Date;
}

/**
 * What the conformance suite needs of one entity in the fake. Every mutation must
 * move the record's modification time past every earlier one (advance the fake's
 * clock first if it has one), so a delta read from "just after the last record
 * seen" sees exactly the changes made since.
 */
export interface ConformanceEntityFake {
  /** Adds `n` records. */
  readonly seed: (n: number) => void;
  /** The live (not deleted) records: id -> modification time, as the connector's `updatedAt` should report it. */
  readonly snapshot: () => ReadonlyMap<string, Date>;
  /** Creates one record; returns its id. */
  readonly create: () => string;
  /** Changes one record. */
  readonly update: (id: string) => void;
  /** Deletes one record, as a user would in the vendor's UI. */
  readonly remove: (id: string) => void;
  /**
   * The vendor's webhook announcing the deletion of `id`, signed with the secret in
   * the fake's `config`. Required when the entity declares `deletes: "webhook"`;
   * when given for other entities, the suite checks it too.
   */
  readonly deletionWebhook?: (id: string) => ConformanceWebhook;
  /**
   * Normalized fields for write round-trips: `create` for `write.create`, `update`
   * for `write.update`. An entity that writes needs the sample for each write it has.
   */
  readonly writeSamples?: {
    readonly create?: () => Record<string, unknown>;
    readonly update?: () => Record<string, unknown>;
  };
}

/**
 * The adapter between a stateful API fake and `describeConnector`. A connector
 * author writes one for their own fake (see `examples/connector-template`).
 *
 * @example
 * const fake: ConformanceFake = {
 *   handlers: myApiHandlers(api),
 *   config: { baseUrl: api.baseUrl, token: api.token, pageSize: 10 },
 *   seedCount: 25,
 *   reset: () => api.reset(),
 *   failNext: (f) => api.failNext(f.status, f.status === 429 ? f.retryAfterSeconds : undefined),
 *   entities: { contacts: { seed: (n) => api.seed(n), snapshot: () => ..., ... } },
 * };
 * describeConnector(myConnector, fake);
 */
export interface ConformanceFake {
  /**
   * MSW handlers serving the fake; the suite starts an MSW server with them that
   * fails unhandled requests. Leave out when the fake is served over real HTTP.
   */
  readonly handlers?: ReadonlyArray<HttpHandler>;
  /** A connection config pointing at the fake (the encoded form, as a user would enter it). */
  readonly config: unknown;
  /** Records each entity is seeded with: more than one page, so resuming from a cursor means something. */
  readonly seedCount: number;
  /** Empties the fake and clears queued failures; called before every check. */
  readonly reset: () => void;
  /**
   * Serves `failure` to the next API call. Give a `config` whose credentials the connector
   * cannot refresh (a static token): a connector that refreshes and retries on 401 would
   * otherwise recover, rightly, and the AuthExpired check could not observe the 401.
   */
  readonly failNext: (failure: ConformanceFailure) => void;
  /** One adapter per connector entity; an entity without one fails the suite. */
  readonly entities: Readonly<Record<string, ConformanceEntityFake>>;
}
