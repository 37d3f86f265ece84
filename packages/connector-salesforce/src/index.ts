import { defineConnector } from "@tandem/connector-sdk";
import { salesforceAuth } from "./auth.ts";
import { failureOf, salesforceRequest } from "./client.ts";
import { SalesforceConfig } from "./config.ts";
import { accounts } from "./entities/accounts.ts";
import { contacts } from "./entities/contacts.ts";
import { salesforceWebhooks } from "./webhooks.ts";

export {
  concurrentLimitRetryAfterMs,
  replicationSoql,
  requestLimitRetryAfterMs,
  type SalesforceContext,
  soqlDateTime,
} from "./client.ts";
export { SalesforceConfig } from "./config.ts";
export { Account, accounts } from "./entities/accounts.ts";
export { Contact, contacts } from "./entities/contacts.ts";
export { outboundMessageAck, parseOutboundMessage, salesforceWebhooks, verifyOutboundMessage } from "./webhooks.ts";
export { parseSalesforceDateTime, parseSforceLimitInfo } from "./wire.ts";

/**
 * Salesforce REST: Contact and Account. OAuth refresh-token auth (see SalesforceConfig); reads are
 * SOQL ordered by SystemModstamp, deltas include the recycle bin (`queryAll`) so deletions of the
 * last 15 days come back as deleted ids; Outbound Messages are the webhooks, acknowledged with a
 * SOAP Ack. A 403 REQUEST_LIMIT_EXCEEDED (the org's daily API limit) is RateLimited for an hour.
 */
export default defineConnector({
  name: "salesforce",
  version: "0.2.0",
  config: SalesforceConfig,
  auth: salesforceAuth,
  // Trades the refresh token again (a cached session would hide a revoked one), then queries.
  check: async (ctx) => {
    await ctx.auth.refresh();
    const response = await salesforceRequest(ctx, {
      path: `/services/data/${ctx.config.apiVersion}/query`,
      query: { q: "SELECT Id FROM Contact LIMIT 1" },
    });
    if (response.status !== 200) throw failureOf(response);
  },
  entities: { contacts, accounts },
  webhooks: salesforceWebhooks,
});
