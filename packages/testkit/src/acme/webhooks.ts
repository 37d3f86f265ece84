import type { InboundWebhookRequest } from "@tandem/connector-sdk";
import { acmeSignature } from "./connector.ts";

/** One event as Acme sends it. */
export interface AcmeWebhookEvent {
  readonly id: string;
  readonly type: "contact.created" | "contact.updated" | "contact.deleted" | "contact.restored";
  readonly objectId: string;
  readonly occurredAt: string;
}

/**
 * An inbound webhook request as Acme would deliver it, signed with `secret` at
 * `now` (pass a wrong secret or an old `now` to test refusals).
 */
export const acmeWebhookRequest = (options: {
  readonly secret: string;
  readonly events: ReadonlyArray<AcmeWebhookEvent>;
  readonly now: Date;
  readonly url?: string;
}): InboundWebhookRequest => {
  const rawBody = JSON.stringify({ events: options.events });
  const t = Math.floor(options.now.getTime() / 1000);
  return {
    method: "POST",
    url: options.url ?? "https://tandem.test/webhooks/acme-crm/connection",
    headers: new Headers({
      "content-type": "application/json",
      "x-acme-signature": `t=${t},v1=${acmeSignature(options.secret, t, rawBody)}`,
    }),
    rawBody,
  };
};
