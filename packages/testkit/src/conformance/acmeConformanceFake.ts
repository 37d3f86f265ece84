import { AcmeCrm } from "@tandem/sandbox";
import { acmeHandlers } from "../acme/handlers.ts";
import { acmeWebhookRequest } from "../acme/webhooks.ts";
import type { ConformanceFake } from "./ConformanceFake.ts";

const webhookSecret = "conformance-acme-secret";

/**
 * The Acme CRM fake as a ConformanceFake: 10 records a page, and a webhook secret so
 * deletion webhooks are checked too. (Acme's own clock moves one second per write.)
 *
 * @example
 * describeConnector(acmeConnector, acmeConformanceFake());
 */
export const acmeConformanceFake = (): ConformanceFake & { readonly api: AcmeCrm } => {
  const api = new AcmeCrm({ baseUrl: "https://acme.conformance.test/api" });
  return {
    api,
    handlers: acmeHandlers(api),
    config: { baseUrl: api.baseUrl, token: api.token, pageSize: 10, webhookSecret },
    seedCount: 25,
    reset: () => api.reset(),
    failNext: (failure) =>
      failure.status === 401 ? api.fail(401) : api.fail(429, { retryAfter: String(failure.retryAfterSeconds) }),
    entities: {
      contacts: {
        seed: (n) => {
          api.seed(n);
        },
        snapshot: () => new Map([...api.contacts.values()].map((c) => [c.id, new Date(c.updatedAt)])),
        create: () => api.create({}).id,
        update: (id) => {
          api.update(id, { lifecycleStage: "customer" });
        },
        remove: (id) => {
          api.remove(id);
        },
        deletionWebhook: (id) => {
          const now = new Date(api.now);
          return {
            request: acmeWebhookRequest({
              secret: webhookSecret,
              events: [{ id: `evt-${id}`, type: "contact.deleted", objectId: id, occurredAt: now.toISOString() }],
              now,
            }),
            now,
          };
        },
        writeSamples: { update: () => ({ lifecycleStage: "opportunity", lastName: "Liskov" }) },
      },
    },
  };
};
