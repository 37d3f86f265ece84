import { Schema } from "effect";

/**
 * A Salesforce connection's config: the org's My Domain URL and a connected app's OAuth
 * credentials with the connection's refresh token. The connector trades the refresh token for
 * an access token at `POST {loginUrl}/services/oauth2/token`, caches it, and refreshes it when
 * Salesforce answers 401 INVALID_SESSION_ID (Salesforce states no expiry: sessions end on the
 * org's session timeout or on revocation).
 *
 * @example
 * { instanceUrl: "https://acme.my.salesforce.com", clientId: "3MVG9...", clientSecret: "...",
 *   refreshToken: "5Aep861...", outboundMessageOrgId: "00D5g000004XyZaEAK" }
 */
export const SalesforceConfig = Schema.Struct({
  /** The org's My Domain URL, e.g. https://acme.my.salesforce.com. The token response's `instance_url` overrides it. */
  instanceUrl: Schema.String.pipe(Schema.pattern(/^https?:\/\//)),
  /** REST API version, default "v60.0". */
  apiVersion: Schema.optionalWith(Schema.String.pipe(Schema.pattern(/^v\d+\.\d$/)), { default: () => "v60.0" }),
  /** The connected app's consumer key. */
  clientId: Schema.NonEmptyString,
  /** The connected app's consumer secret. */
  clientSecret: Schema.Redacted(Schema.NonEmptyString),
  /** The connection's OAuth refresh token. */
  refreshToken: Schema.Redacted(Schema.NonEmptyString),
  /**
   * Origin of the OAuth token endpoint. Default: `instanceUrl` (My Domain serves it). Use
   * https://login.salesforce.com (production) or https://test.salesforce.com (sandboxes) for
   * refresh tokens issued there.
   */
  loginUrl: Schema.optional(Schema.String.pipe(Schema.pattern(/^https?:\/\//))),
  /**
   * Records per query page, sent as `Sforce-Query-Options: batchSize=N`. Default 2,000, Salesforce's
   * default and maximum; Salesforce honours 200 to 2,000 and treats the value as a hint.
   */
  pageSize: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 2_000)), { default: () => 2_000 }),
  /**
   * The org id (15 or 18 characters, `00D...`) Outbound Messages must carry to be accepted.
   * Without it every Outbound Message is refused. See `verifyOutboundMessage`.
   */
  outboundMessageOrgId: Schema.optional(Schema.String.pipe(Schema.pattern(/^00D[a-zA-Z0-9]{12}([a-zA-Z0-9]{3})?$/))),
});

/** The decoded config connectors receive as `ctx.config`. */
export type SalesforceConfig = typeof SalesforceConfig.Type;
