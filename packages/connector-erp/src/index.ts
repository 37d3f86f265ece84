import { defineConnector } from "@tandem/connector-sdk";
import { businessCentralAuth } from "./auth.ts";
import { businessCentralRequest, companyRoot, failureOf } from "./client.ts";
import { BusinessCentralConfig } from "./config.ts";
import { customers } from "./entities/customers.ts";
import { items } from "./entities/items.ts";
import { businessCentralWebhooks } from "./webhooks.ts";

export { type BusinessCentralContext, companyRoot } from "./client.ts";
export { BusinessCentralConfig } from "./config.ts";
export { Customer, CustomerBlocked, customers } from "./entities/customers.ts";
export { Item, items } from "./entities/items.ts";
export {
  type BusinessCentralSubscription,
  businessCentralHandshake,
  businessCentralWebhooks,
  parseBusinessCentralWebhook,
  renewBusinessCentralSubscription,
  subscribeBusinessCentral,
  verifyBusinessCentralWebhook,
} from "./webhooks.ts";

/**
 * BC's limit is 6,000 requests per 5 minutes per user (an app's client credentials are one
 * user): 20/s sustained. `requestsPerSecond` in the config overrides it.
 * See https://learn.microsoft.com/dynamics365/business-central/dev-itpro/administration/operational-limits-online
 */
export const businessCentralRateLimitFor = (config: { readonly requestsPerSecond?: number | undefined }) => {
  const rate = config.requestsPerSecond ?? 20;
  return { requestsPerSecond: rate, burst: Math.max(1, Math.ceil(rate)) };
};

/**
 * Dynamics 365 Business Central API v2.0: items (inventory) and customers of one company.
 * Auth by client credentials (an Entra app registration); full reads follow `@odata.nextLink`,
 * deltas filter on `lastModifiedDateTime`; BC keeps no tombstones, so deletions come from
 * reconciliation (`readIds`) and `deleted` notifications. Writes use `If-Match` etags.
 */
export default defineConnector({
  name: "erp",
  version: "0.2.0",
  config: BusinessCentralConfig,
  auth: businessCentralAuth,
  check: async (ctx) => {
    const response = await businessCentralRequest(ctx, { url: companyRoot(ctx.config) });
    if (response.status !== 200) throw failureOf(response);
  },
  entities: { items, customers },
  webhooks: businessCentralWebhooks,
  rateLimit: businessCentralRateLimitFor,
});
