import { type HubSpotWebhookEvent, hubSpotSignatureHeaders } from "@tandem/testkit";
import autocannon from "autocannon";

export interface WebhookLoadOptions {
  readonly url: string;
  readonly appSecret: string;
  readonly durationSeconds: number;
  readonly connections: number;
  /** Offered load in requests per second across all connections; undefined = as fast as possible. */
  readonly requestsPerSecond?: number;
  /** Events per request (HubSpot batches up to 100 events per delivery). */
  readonly eventsPerRequest: number;
  /** Contact ids the events name (the seeded source range). */
  readonly objectIds: { readonly first: number; readonly count: number };
}

export interface WebhookLoadFigures {
  readonly requests: number;
  readonly acceptedRequests: number;
  readonly acceptedEventsPerSecond: number;
  readonly rejected: number;
  readonly errors: number;
  /** Time from sending a request to its acknowledgement, as the load generator saw it. */
  readonly ackMs: { readonly p50: number; readonly p99: number; readonly max: number };
}

/**
 * Sends signed HubSpot `contact.propertyChange` deliveries with autocannon, every event with a
 * new event id (so deduplication never shortcuts the work) and a fresh v3 signature.
 */
export const runWebhookLoad = async (options: WebhookLoadOptions): Promise<WebhookLoadFigures> => {
  const uri = options.url;
  let nextEventId = 1;
  const body = () => {
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
    return JSON.stringify(events);
  };
  const result = await autocannon({
    url: uri,
    connections: options.connections,
    duration: options.durationSeconds,
    ...(options.requestsPerSecond === undefined ? {} : { overallRate: options.requestsPerSecond }),
    requests: [
      {
        method: "POST",
        setupRequest: (request) => {
          const payload = body();
          const headers = hubSpotSignatureHeaders({
            clientSecret: options.appSecret,
            method: "POST",
            uri,
            body: payload,
            timestamp: Date.now(),
            versions: ["v3"],
          });
          return { ...request, body: payload, headers: { ...headers, "content-type": "application/json" } };
        },
      },
    ],
  });
  const accepted = result["2xx"];
  return {
    requests: result.requests.total,
    acceptedRequests: accepted,
    acceptedEventsPerSecond: (accepted * options.eventsPerRequest) / result.duration,
    rejected: result.non2xx,
    errors: result.errors + result.timeouts,
    ackMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
  };
};
