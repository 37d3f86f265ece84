import { Schema } from "effect";

/** Webhook signature versions HubSpot sends (v1/v2 in `X-HubSpot-Signature`, v3 in `X-HubSpot-Signature-v3`). */
export const HubSpotSignatureVersion = Schema.Literal("v1", "v2", "v3");

/**
 * A HubSpot connection's config. Authenticate with a private app token (`accessToken`), or
 * with OAuth (`oauth`: the app's client id and secret plus a refresh token; the connector
 * trades the refresh token for access tokens at `POST /oauth/v1/token` and refreshes on 401).
 *
 * @example
 * { baseUrl: "https://api.hubapi.com", accessToken: "pat-na1-..." }
 * { oauth: { clientId: "...", clientSecret: "...", refreshToken: "..." },
 *   webhooks: { signatureVersions: ["v3"] } }
 */
export const HubSpotConfig = Schema.Struct({
  /** Default https://api.hubapi.com; point it at a sandbox, a proxy, or the testkit fake. */
  baseUrl: Schema.optionalWith(Schema.String.pipe(Schema.pattern(/^https?:\/\//)), {
    default: () => "https://api.hubapi.com",
  }),
  /** Private app access token (or a current OAuth access token, used until it is refused). */
  accessToken: Schema.optional(Schema.Redacted(Schema.NonEmptyString)),
  /** OAuth app credentials and the connection's refresh token. */
  oauth: Schema.optional(
    Schema.Struct({
      clientId: Schema.NonEmptyString,
      clientSecret: Schema.Redacted(Schema.NonEmptyString),
      refreshToken: Schema.Redacted(Schema.NonEmptyString),
    }),
  ),
  /**
   * Records per list page of full reads. Default 100, HubSpot's maximum (it answers larger
   * limits with 100); raise it only against an endpoint that serves more (a proxy, a fake).
   */
  listPageSize: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 100_000)), { default: () => 100 }),
  /**
   * Overrides the connection's request budget (default 9/s, then HubSpot's rate-limit headers):
   * a raised quota, or an endpoint with no limit. The headers are then not read, so the budget is
   * exactly this; 429s still pause the connection for their Retry-After.
   */
  requestsPerSecond: Schema.optional(Schema.Number.pipe(Schema.positive())),
  /** Inbound webhook verification. */
  webhooks: Schema.optional(
    Schema.Struct({
      /** The app's client secret the signatures are keyed with. Default: `oauth.clientSecret`. */
      clientSecret: Schema.optional(Schema.Redacted(Schema.NonEmptyString)),
      /**
       * Signature versions accepted, default ["v3"]. v1 signs only the body and v2 carries no
       * timestamp, so both allow replays: accept them only for apps that still send them.
       */
      signatureVersions: Schema.optionalWith(Schema.Array(HubSpotSignatureVersion), { default: () => ["v3"] }),
      /**
       * The public URL HubSpot posts to (scheme, host, path prefix), when a proxy rewrites it:
       * v2/v3 sign the URI HubSpot called, not the one we received.
       * Example: "https://sync.example.com".
       */
      publicOrigin: Schema.optional(Schema.String.pipe(Schema.pattern(/^https?:\/\//))),
    }),
  ),
}).pipe(
  Schema.filter((config) =>
    config.accessToken !== undefined || config.oauth !== undefined ? true : "set accessToken or oauth",
  ),
);

/** The decoded config connectors receive as `ctx.config`. */
export type HubSpotConfig = typeof HubSpotConfig.Type;
