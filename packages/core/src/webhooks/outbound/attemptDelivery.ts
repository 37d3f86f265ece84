import { type ConnectorHttp, RateLimited, Unavailable } from "@tandem/connector-sdk";
import { isEgressRefused } from "@tandem/connector-sdk/runtime";
import { type Context, Effect } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import type { CredentialCipher } from "../../tenancy/CredentialCipher.ts";
import { DeliveryRejected, subscriptionSecretAad } from "../OutboundWebhooks.ts";
import * as deliveries from "../WebhookDeliveryStore.ts";
import { SIGNATURE_HEADER, signPayload } from "../WebhookSignature.ts";
import * as subscriptions from "../WebhookSubscriptionStore.ts";

/** What a delivery attempt needs. */
export interface AttemptDeps {
  readonly db: DatabaseService;
  readonly cipher: Context.Tag.Service<CredentialCipher>;
  readonly http: ConnectorHttp;
  readonly now: () => Date;
}

/** Earlier events of the same record a delivery sends first, at most, per attempt. */
const MAX_EARLIER = 20;

/** Where a subscription's deliveries go, and the secret they are signed with. */
interface Receiver {
  readonly subscriptionId: string;
  readonly url: string;
  readonly secret: string;
}

/** A delivery to send: the row's id, its event and the payload. */
interface Outgoing {
  readonly id: string;
  readonly payload: unknown;
  readonly event_id: string;
  readonly event_type: string;
}

/**
 * POSTs one delivery, signed (HMAC-SHA256 over timestamp and body), and records the outcome.
 * Succeeds when the receiver answered 2xx (or the delivery is no longer pending); fails with
 * the typed failure the queue decides retries from (RateLimited honours Retry-After,
 * Unavailable backs off), or DeliveryRejected when retrying cannot help.
 *
 * A delivery with an ordering key (a record's `record.*` event) is sent after the events of the
 * same record queued before it for the same subscription: those still pending are sent first, in
 * order, and a failure among them fails this attempt too. Their own jobs may send them again
 * (delivery is at least once; a receiver dedupes by event id), but never after a later event
 * was delivered first.
 */
export const attemptDelivery = Effect.fn("OutboundWebhooks.attempt")(function* (deps: AttemptDeps, deliveryId: string) {
  const { db } = deps;
  const delivery = yield* db.query((k) => deliveries.withSubscription(k, deliveryId)).pipe(Effect.orDie);
  // Deleted subscription, already delivered, or given up: nothing to do.
  if (delivery === undefined || delivery.status !== "pending" || delivery.disabled_at !== null) return;
  const secret = yield* deps.cipher
    .decrypt(delivery.secret_ciphertext, subscriptionSecretAad(delivery.subscription_id))
    .pipe(Effect.orDie);
  const receiver: Receiver = { subscriptionId: delivery.subscription_id, url: delivery.url, secret };
  if (delivery.ordering_key !== null) {
    const earlier = yield* db
      .query((k) =>
        deliveries.earlierPending(
          k,
          { subscriptionId: delivery.subscription_id, orderingKey: delivery.ordering_key!, seq: delivery.seq },
          MAX_EARLIER + 1,
        ),
      )
      .pipe(Effect.orDie);
    for (const previous of earlier.slice(0, MAX_EARLIER)) yield* send(deps, receiver, previous);
    if (earlier.length > MAX_EARLIER) {
      return yield* new Unavailable({ message: "earlier events of the same record are still being delivered" });
    }
  }
  yield* send(deps, receiver, delivery);
});

/** One POST of one delivery, its outcome recorded on the delivery's row. */
const send = (deps: AttemptDeps, receiver: Receiver, delivery: Outgoing) =>
  Effect.gen(function* () {
    const { db } = deps;
    const deliveryId = delivery.id;
    const body = JSON.stringify(delivery.payload);
    const at = deps.now();
    const outcome = yield* Effect.tryPromise({
      try: () =>
        deps.http.request({
          method: "POST",
          url: receiver.url,
          headers: {
            "content-type": "application/json",
            [SIGNATURE_HEADER]: signPayload(receiver.secret, body, Math.floor(at.getTime() / 1000)),
            "tandem-event-id": delivery.event_id,
            "tandem-event-type": delivery.event_type,
            "tandem-delivery-id": delivery.id,
          },
          body,
        }),
      catch: (e) =>
        e instanceof RateLimited || e instanceof Unavailable || isEgressRefused(e)
          ? e
          : new Unavailable({ message: e instanceof Error ? e.message : String(e) }),
    }).pipe(Effect.either);
    const record = (attempt: Omit<Parameters<typeof deliveries.recordAttempt>[2], "at">) =>
      db.query((k) => deliveries.recordAttempt(k, deliveryId, { at, ...attempt })).pipe(Effect.orDie);
    if (outcome._tag === "Left" && isEgressRefused(outcome.left)) {
      // No status and no connection detail: the delivery log must not tell a tenant which
      // internal ports answer. A refusal does not heal by retrying, so the delivery is dead.
      const reason = "refused by the egress policy (private, loopback or link-local address, or a redirect)";
      yield* record({ status: null, error: reason, delivered: false });
      return yield* new DeliveryRejected({ message: reason });
    }
    if (outcome._tag === "Left") {
      const error = outcome.left as RateLimited | Unavailable;
      yield* record({
        status: error._tag === "RateLimited" ? 429 : (error.status ?? null),
        error: error.message,
        delivered: false,
      });
      return yield* error;
    }
    const status = outcome.right.status;
    const delivered = status >= 200 && status < 300;
    yield* record({ status, error: delivered ? null : `receiver answered ${status}`, delivered });
    if (delivered) return;
    if (status === 410) {
      yield* db
        .query((k) => subscriptions.disable(k, receiver.subscriptionId, at, "receiver answered 410 Gone"))
        .pipe(Effect.orDie);
      yield* db.query((k) => deliveries.setDead(k, deliveryId)).pipe(Effect.orDie);
      return yield* new DeliveryRejected({ message: "receiver answered 410 Gone; subscription disabled" });
    }
    // Any other answer may be a misconfigured receiver that gets fixed: retry with backoff.
    return yield* new Unavailable({ message: `receiver answered ${status}`, status });
  });
