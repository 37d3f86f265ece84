import { defineConnector } from "@tandem/core";
import { Schema } from "effect";

/** Salesforce REST (Contact, Account). Config: instance URL and OAuth credentials. */
export const SalesforceConfig = Schema.Struct({
  /** e.g. https://acme.my.salesforce.com */
  instanceUrl: Schema.String.pipe(Schema.pattern(/^https?:\/\//)),
  /** REST API version, default "v60.0". */
  apiVersion: Schema.optionalWith(Schema.String.pipe(Schema.pattern(/^v\d+\.\d$/)), { default: () => "v60.0" }),
  clientId: Schema.NonEmptyString,
  clientSecret: Schema.Redacted(Schema.NonEmptyString),
  refreshToken: Schema.Redacted(Schema.NonEmptyString),
});

export default defineConnector({
  name: "salesforce",
  version: "0.1.0",
  config: SalesforceConfig,
  entities: {},
});
