import { Schema } from "effect";

/**
 * A Business Central connection's config: the environment's company, and an app registration
 * (Microsoft Entra ID) allowed to call Business Central with client credentials
 * (`API.ReadWrite.All` application permission, the app registered in BC's
 * "Microsoft Entra Applications" page).
 * See https://learn.microsoft.com/dynamics365/business-central/dev-itpro/administration/automation-apis-using-s2s-authentication
 *
 * @example
 * { tenantId: "contoso.onmicrosoft.com", environment: "production",
 *   companyId: "0c6ac6e2-6f5e-ee11-8df0-6045bdc8c1a1",
 *   clientId: "3e1d8f2a-...", clientSecret: "...", webhookClientState: "a-long-random-string" }
 */
export const BusinessCentralConfig = Schema.Struct({
  /** Default https://api.businesscentral.dynamics.com */
  baseUrl: Schema.optionalWith(Schema.String.pipe(Schema.pattern(/^https?:\/\//)), {
    default: () => "https://api.businesscentral.dynamics.com",
  }),
  /** The Entra tenant: its GUID or a verified domain (`contoso.onmicrosoft.com`). */
  tenantId: Schema.NonEmptyString,
  /** The environment's name. Default "production". */
  environment: Schema.optionalWith(Schema.NonEmptyString, { default: () => "production" }),
  /** The company's id (a GUID, from `GET .../api/v2.0/companies`). */
  companyId: Schema.NonEmptyString,
  /** The app registration's application (client) id. */
  clientId: Schema.NonEmptyString,
  clientSecret: Schema.Redacted(Schema.NonEmptyString),
  /**
   * The identity platform tokens come from. Default https://login.microsoftonline.com; a
   * sovereign cloud's (e.g. https://login.microsoftonline.us), a proxy, or a test fake.
   * Tokens are requested at `{authorityUrl}/{tenantId}/oauth2/v2.0/token`.
   */
  authorityUrl: Schema.optionalWith(Schema.String.pipe(Schema.pattern(/^https?:\/\//)), {
    default: () => "https://login.microsoftonline.com",
  }),
  /** The token's scope. Default https://api.businesscentral.dynamics.com/.default. */
  scope: Schema.optionalWith(Schema.NonEmptyString, {
    default: () => "https://api.businesscentral.dynamics.com/.default",
  }),
  /**
   * Records per page (`Prefer: odata.maxpagesize`). Default 1,000: one page is one checkpoint,
   * and BC answers up to 20,000 without the preference, more than a page should hold in memory.
   */
  pageSize: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 20_000)), { default: () => 1_000 }),
  /**
   * The `clientState` given to webhook subscriptions: BC echoes it in every notification, and
   * notifications whose `clientState` differs are refused. Without it every notification is
   * refused. Use a long random string.
   */
  webhookClientState: Schema.optional(Schema.Redacted(Schema.NonEmptyString)),
  /**
   * Overrides the connection's request budget, default 20/s (BC allows 6,000 requests per
   * 5 minutes per user, and an app's client credentials are one user).
   */
  requestsPerSecond: Schema.optional(Schema.Number.pipe(Schema.positive())),
});

/** The decoded config connectors receive as `ctx.config`. */
export type BusinessCentralConfig = typeof BusinessCentralConfig.Type;
