/** An HTTP endpoint under load in the webhook_ingest scenario, running in its own process. */
export interface WebhookReceiver {
  /** Where signed HubSpot event batches are POSTed, e.g. `http://127.0.0.1:4000/webhooks/hubspot/<id>`. */
  readonly url: string;
  /**
   * Milliseconds from receipt of each event's request to the event being durably stored (for a
   * receiver that stores before it acknowledges, the same as its handling time). Empty when the
   * receiver stores nothing.
   */
  readonly receiptToStoredMs: () => Promise<ReadonlyArray<number>>;
  /** Events stored since the last `mark` (distinct event ids). */
  readonly storedEvents: () => Promise<number>;
  /** Starts the measurement over: the warm-up's events and timings are left out of the figures. */
  readonly mark: () => Promise<void>;
  readonly close: () => Promise<void>;
}

/** What a receiver needs to verify signatures (HubSpot v3) and where to store events. */
export interface WebhookReceiverInput {
  readonly databaseUrl: string;
  /** The HubSpot source (events name contacts that exist there), for receivers that fetch the record. */
  readonly sourceUrl: string;
  readonly accessToken: string;
  /** The HubSpot app's client secret, the key of the v3 signature. */
  readonly appSecret: string;
}
