import type { HubSpotChange, HubSpotStore } from "./HubSpotStore.ts";
import { type HubSpotSignatureVersion, hubSpotSignatureHeaders } from "./HubSpotWebhookSignature.ts";

/** One event as HubSpot's webhooks API sends it (a delivery's body is a JSON array of these). */
export interface HubSpotWebhookEvent {
  readonly eventId: number;
  readonly subscriptionId: number;
  readonly portalId: number;
  readonly appId: number;
  /** Epoch milliseconds. */
  readonly occurredAt: number;
  readonly subscriptionType: string;
  readonly attemptNumber: number;
  readonly objectId: number;
  readonly changeSource: string;
  readonly changeFlag?: string;
  readonly propertyName?: string;
  readonly propertyValue?: string;
  readonly mergedObjectIds?: ReadonlyArray<number>;
  readonly primaryObjectId?: number;
  readonly newObjectId?: number;
}

export interface HubSpotWebhookEmitterOptions {
  /** The store whose changes become events (a fake's `store`). */
  readonly store: HubSpotStore;
  /** Where deliveries are POSTed: the receiver's full URL (it is part of the v2/v3 signature). */
  readonly targetUrl: string;
  /** The app's client secret the signatures are keyed with. */
  readonly clientSecret: string;
  /** Signatures to send. Default ["v1", "v3"], as HubSpot does for CRM object subscriptions. */
  readonly signatureVersions?: ReadonlyArray<HubSpotSignatureVersion>;
  /** Share (0..1) of events also delivered a second time. Default 0. */
  readonly duplicateRate?: number;
  /** Shuffle events before batching, as HubSpot's parallel deliveries do. Default false. */
  readonly reorder?: boolean;
  /** Events per delivery; HubSpot sends up to 100. Default 100. */
  readonly maxEventsPerRequest?: number;
  readonly portalId?: number;
  readonly appId?: number;
  /** Random source for duplicates and reordering. Default Math.random. */
  readonly random?: () => number;
  /** Sender's wall clock for `X-HubSpot-Request-Timestamp` (receivers compare it to theirs). Default Date.now. */
  readonly now?: () => number;
  /** Default globalThis.fetch (so MSW can intercept the deliveries too). */
  readonly fetch?: typeof fetch;
}

/** One POST the emitter made. */
export interface HubSpotWebhookDelivery {
  readonly status: number;
  readonly events: ReadonlyArray<HubSpotWebhookEvent>;
  readonly body: string;
  readonly headers: Record<string, string>;
}

/**
 * Sends HubSpot-style webhook deliveries for the store's changes: queued as they
 * happen, POSTed on `flush()`. Failed deliveries (non-2xx or network errors) stay
 * queued with `attemptNumber` raised, as HubSpot retries them.
 */
export interface HubSpotWebhookEmitter {
  /** Events waiting to be delivered. */
  readonly pending: () => ReadonlyArray<HubSpotWebhookEvent>;
  /** Delivers everything queued (duplicates and reordering applied); resolves with each POST. */
  readonly flush: () => Promise<ReadonlyArray<HubSpotWebhookDelivery>>;
  /** Sends exactly these events in one signed POST, bypassing the queue. */
  readonly deliver: (events: ReadonlyArray<HubSpotWebhookEvent>) => Promise<HubSpotWebhookDelivery>;
  /** Stops listening to the store. */
  readonly close: () => void;
}

const subscriptionPrefix = { contacts: "contact", companies: "company" } as const;

/** Builds the emitter (see HubSpotWebhookEmitter). */
export const createHubSpotWebhookEmitter = (options: HubSpotWebhookEmitterOptions): HubSpotWebhookEmitter => {
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const send = options.fetch ?? globalThis.fetch;
  const portalId = options.portalId ?? 62515;
  const appId = options.appId ?? 54321;
  const batchSize = options.maxEventsPerRequest ?? 100;
  const queue: Array<HubSpotWebhookEvent> = [];
  let nextEventId = 1;

  const toEvent = (change: HubSpotChange): HubSpotWebhookEvent => {
    const prefix = subscriptionPrefix[change.objectType];
    return {
      eventId: nextEventId++,
      subscriptionId: 1000 + ["creation", "propertyChange", "deletion", "merge", "restore"].indexOf(change.kind),
      portalId,
      appId,
      occurredAt: change.occurredAt,
      subscriptionType: `${prefix}.${change.kind}`,
      attemptNumber: 0,
      objectId: Number(change.objectId),
      changeSource: "CRM",
      ...(change.kind === "creation" ? { changeFlag: "NEW" } : {}),
      ...(change.kind === "deletion" ? { changeFlag: "DELETED" } : {}),
      ...(change.propertyName !== undefined
        ? { propertyName: change.propertyName, propertyValue: change.propertyValue ?? "" }
        : {}),
      ...(change.mergedObjectIds !== undefined
        ? {
            mergedObjectIds: change.mergedObjectIds.map(Number),
            primaryObjectId: Number(change.objectId),
            newObjectId: Number(change.newObjectId ?? change.objectId),
          }
        : {}),
    };
  };

  const unsubscribe = options.store.onChange((change) => queue.push(toEvent(change)));

  const deliver = async (events: ReadonlyArray<HubSpotWebhookEvent>): Promise<HubSpotWebhookDelivery> => {
    const body = JSON.stringify(events);
    const headers = {
      "content-type": "application/json",
      "user-agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/) (namespace: webhooks-nonprod)",
      ...hubSpotSignatureHeaders({
        clientSecret: options.clientSecret,
        method: "POST",
        uri: options.targetUrl,
        body,
        timestamp: now(),
        versions: options.signatureVersions ?? ["v1", "v3"],
      }),
    };
    try {
      const response = await send(options.targetUrl, { method: "POST", headers, body });
      await response.arrayBuffer();
      return { status: response.status, events, body, headers };
    } catch {
      return { status: 0, events, body, headers };
    }
  };

  return {
    pending: () => [...queue],
    flush: async () => {
      const events = queue.splice(0, queue.length);
      for (const event of [...events]) {
        if ((options.duplicateRate ?? 0) > 0 && random() < options.duplicateRate!) events.push(event);
      }
      if (options.reorder) {
        for (let i = events.length - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [events[i], events[j]] = [events[j]!, events[i]!];
        }
      }
      const deliveries: Array<HubSpotWebhookDelivery> = [];
      for (let start = 0; start < events.length; start += batchSize) {
        const delivery = await deliver(events.slice(start, start + batchSize));
        deliveries.push(delivery);
        if (delivery.status < 200 || delivery.status >= 300) {
          for (const event of delivery.events) queue.push({ ...event, attemptNumber: event.attemptNumber + 1 });
        }
      }
      return deliveries;
    },
    deliver,
    close: unsubscribe,
  };
};
