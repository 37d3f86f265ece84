import { defineConnector } from "@tandem/core";
import { Schema } from "effect";

/** Dynamics 365 Business Central API v2.0 (items, customers). */
export const BusinessCentralConfig = Schema.Struct({
  /** Default https://api.businesscentral.dynamics.com */
  baseUrl: Schema.optionalWith(Schema.String.pipe(Schema.pattern(/^https?:\/\//)), {
    default: () => "https://api.businesscentral.dynamics.com",
  }),
  tenantId: Schema.NonEmptyString,
  environment: Schema.optionalWith(Schema.NonEmptyString, { default: () => "production" }),
  companyId: Schema.NonEmptyString,
  clientId: Schema.NonEmptyString,
  clientSecret: Schema.Redacted(Schema.NonEmptyString),
});

export default defineConnector({
  name: "erp",
  version: "0.1.0",
  config: BusinessCentralConfig,
  entities: {},
});
