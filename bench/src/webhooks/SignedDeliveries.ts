import { type HubSpotWebhookEvent, hubSpotSignatureHeaders } from "@tandem/testkit";

/**
 * HubSpot `contact.propertyChange` deliveries for the load, signed with v3 as HubSpot signs them.
 * Every event gets a new event id, so deduplication never shortcuts a receiver's work.
 */
export const signedDeliveries = (options: {
  readonly url: string;
  readonly appSecret: string;
  readonly eventsPerRequest: number;
  /** Contact ids the events name (the seeded source range). */
  readonly objectIds: { readonly first: number; readonly count: number };
  /** The first event id (default 1): a warm-up load takes its own range. */
  readonly firstEventId?: number;
}) => {
  let nextEventId = options.firstEventId ?? 1;
  return (): { readonly body: string; readonly headers: Record<string, string> } => {
    const now = Date.now();
    const events: Array<HubSpotWebhookEvent> = [];
    for (let i = 0; i < options.eventsPerRequest; i++) {
      const eventId = nextEventId++;
      events.push({
        eventId,
        subscriptionId: 1,
        portalId: 1,
        appId: 1,
        occurredAt: now,
        subscriptionType: "contact.propertyChange",
        attemptNumber: 0,
        objectId: options.objectIds.first + (eventId % options.objectIds.count),
        propertyName: "jobtitle",
        propertyValue: `title ${eventId}`,
        changeSource: "CRM",
      });
    }
    const body = JSON.stringify(events);
    const signature = hubSpotSignatureHeaders({
      clientSecret: options.appSecret,
      method: "POST",
      uri: options.url,
      body,
      timestamp: now,
      versions: ["v3"],
    });
    return { body, headers: { ...signature, "content-type": "application/json" } };
  };
};
