import { defineConnector } from "@tandem/core";
import { Schema } from "effect";

/**
 * HubSpot CRM v3. Config: a private app token, or OAuth (client id/secret + refresh token).
 * Entities (contacts, companies) are declared in ./entities.
 */
export const HubSpotConfig = Schema.Struct({
  /** Default https://api.hubapi.com; point it at a sandbox, a proxy, or the testkit fake. */
  baseUrl: Schema.optionalWith(Schema.String.pipe(Schema.pattern(/^https?:\/\//)), {
    default: () => "https://api.hubapi.com",
  }),
  /** Private app access token (or the current OAuth access token). */
  accessToken: Schema.Redacted(Schema.NonEmptyString),
});

export default defineConnector({
  name: "hubspot",
  version: "0.1.0",
  config: HubSpotConfig,
  entities: {},
});
