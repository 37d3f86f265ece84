import { defineConnector } from "@tandem/connector-sdk";
import { hubSpotAuth } from "./auth.ts";
import { failureOf, hubSpotRequest } from "./client.ts";
import { HubSpotConfig } from "./config.ts";
import { companies } from "./entities/companies.ts";
import { contacts } from "./entities/contacts.ts";
import { hubSpotWebhooks } from "./webhooks.ts";

export { type HubSpotContext, searchResultCap } from "./client.ts";
export { HubSpotConfig, HubSpotSignatureVersion } from "./config.ts";
export { Company, companies } from "./entities/companies.ts";
export { Contact, type ContactUpsertResult, contacts, upsertContactsByEmail } from "./entities/contacts.ts";

import { hubSpotRateLimitFor } from "./rateBudget.ts";

export { type HubSpotRateBudget, hubSpotRateBudget, hubSpotRateLimit, hubSpotRateLimitFor } from "./rateBudget.ts";
export { hubSpotWebhooks, parseHubSpotWebhook, signatureMaxAgeMs, verifyHubSpotWebhook } from "./webhooks.ts";

/**
 * HubSpot CRM v3: contacts and companies. Auth by private app token or OAuth refresh token
 * (see HubSpotConfig); full reads list, deltas search by modification time, deletions come
 * from the archived listing and `*.deletion` webhooks. The rate budget from HubSpot's headers
 * is `hubSpotRateBudget` (exported for the engine's token bucket).
 */
export default defineConnector({
  name: "hubspot",
  version: "0.2.0",
  config: HubSpotConfig,
  auth: hubSpotAuth,
  check: async (ctx) => {
    const response = await hubSpotRequest(ctx, { path: "/crm/v3/objects/contacts", query: { limit: 1 } });
    if (response.status !== 200) throw failureOf(response);
  },
  entities: { contacts, companies },
  webhooks: hubSpotWebhooks,
  rateLimit: hubSpotRateLimitFor,
});
