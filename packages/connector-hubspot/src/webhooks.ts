import { createHash } from "node:crypto";
import {
  type ConnectorWebhooks,
  constantTimeEqual,
  hmacDigest,
  type InboundWebhookRequest,
  InvalidRecord,
  type WebhookEvent,
} from "@tandem/connector-sdk";
import { Redacted, Schema } from "effect";
import type { HubSpotConfig } from "./config.ts";
import { WebhookEventWire } from "./wire.ts";

/*
 * HubSpot webhook deliveries: a JSON array of events, signed.
 * See https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests
 * and https://developers.hubspot.com/docs/api/webhooks
 */

/** v3 timestamps older (or further in the future) than this are rejected, as HubSpot prescribes. */
export const signatureMaxAgeMs = 5 * 60 * 1000;

/**
 * HubSpot signs v3 with some reserved characters decoded in the URI; a receiver that got
 * them percent-encoded must decode the same ones before hashing.
 */
const v3Uri = (uri: string) =>
  uri.replace(/%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)/gi, (encoded) => decodeURIComponent(encoded));

/** The URI HubSpot called: our URL, with its origin swapped for `publicOrigin` behind a proxy. */
const signedUri = (config: HubSpotConfig, url: string) => {
  const publicOrigin = config.webhooks?.publicOrigin;
  if (publicOrigin === undefined) return url;
  const received = new URL(url);
  return `${publicOrigin.replace(/\/+$/, "")}${received.pathname}${received.search}`;
};

const webhookSecret = (config: HubSpotConfig): string | undefined => {
  const secret = config.webhooks?.clientSecret ?? config.oauth?.clientSecret;
  return secret === undefined ? undefined : Redacted.value(secret);
};

/**
 * True when the delivery carries a valid signature of an accepted version
 * (`webhooks.signatureVersions`, default v3 only):
 * - v3: `X-HubSpot-Signature-v3` = base64(HMAC-SHA256(secret, method + uri + body + timestamp)),
 *   `X-HubSpot-Request-Timestamp` within 5 minutes of `now`;
 * - v2: `X-HubSpot-Signature` = hex(SHA-256(secret + method + uri + body));
 * - v1: `X-HubSpot-Signature` = hex(SHA-256(secret + body)).
 * v1/v2 are read only when `X-HubSpot-Signature-Version` names them.
 */
export const verifyHubSpotWebhook = (
  ctx: { readonly config: HubSpotConfig; readonly now: Date },
  request: InboundWebhookRequest,
): boolean => {
  const secret = webhookSecret(ctx.config);
  if (secret === undefined) return false;
  const accepted = ctx.config.webhooks?.signatureVersions ?? ["v3"];
  const uri = signedUri(ctx.config, request.url);
  const method = request.method.toUpperCase();
  if (accepted.includes("v3")) {
    const signature = request.headers.get("x-hubspot-signature-v3");
    const timestamp = request.headers.get("x-hubspot-request-timestamp");
    if (signature !== null && timestamp !== null && /^\d+$/.test(timestamp)) {
      const fresh = Math.abs(ctx.now.getTime() - Number(timestamp)) <= signatureMaxAgeMs;
      const expected = hmacDigest(secret, method + v3Uri(uri) + request.rawBody + timestamp, { encoding: "base64" });
      if (fresh && constantTimeEqual(expected, signature)) return true;
    }
  }
  const version = request.headers.get("x-hubspot-signature-version");
  const legacy = request.headers.get("x-hubspot-signature");
  if (legacy === null || (version !== "v1" && version !== "v2") || !accepted.includes(version)) return false;
  const source = version === "v1" ? secret + request.rawBody : secret + method + uri + request.rawBody;
  return constantTimeEqual(createHash("sha256").update(source, "utf8").digest("hex"), legacy.toLowerCase());
};

/** Built once: deliveries come by the thousand per second, each with up to 100 events. */
const decodeEventWire = Schema.decodeUnknownEither(WebhookEventWire);

const entityOf = (event: WebhookEventWire): string | undefined => {
  const [prefix] = event.subscriptionType.split(".");
  if (prefix === "contact") return "contacts";
  if (prefix === "company") return "companies";
  if (prefix === "object")
    return event.objectTypeId === "0-1" ? "contacts" : event.objectTypeId === "0-2" ? "companies" : undefined;
  return undefined;
};

const kinds: Record<string, WebhookEvent["kind"]> = {
  creation: "created",
  propertyChange: "updated",
  deletion: "deleted",
  privacyDeletion: "deleted",
  merge: "merged",
  restore: "restored",
};

/**
 * Normalizes a delivery. A merge yields `merged` for the surviving id and `deleted` for every
 * other merged id (they stop existing). Subscriptions we do not sync (associations, other
 * objects) are dropped. The body must be a JSON array; anything else is InvalidRecord.
 */
export const parseHubSpotWebhook = (request: InboundWebhookRequest): ReadonlyArray<WebhookEvent> => {
  let body: unknown;
  try {
    body = JSON.parse(request.rawBody);
  } catch {
    throw new InvalidRecord({ message: "HubSpot webhook body is not JSON" });
  }
  if (!Array.isArray(body)) throw new InvalidRecord({ message: "HubSpot webhook body is not an array of events" });
  const events: Array<WebhookEvent> = [];
  for (const raw of body) {
    const decoded = decodeEventWire(raw);
    if (decoded._tag === "Left") continue;
    const event = decoded.right;
    const entity = entityOf(event);
    const kind = kinds[event.subscriptionType.split(".")[1] ?? ""];
    if (entity === undefined || kind === undefined) continue;
    const occurredAt = new Date(event.occurredAt);
    const eventId = String(event.eventId);
    if (kind !== "merged") {
      events.push({ eventId, entity, externalId: String(event.objectId), kind, occurredAt });
      continue;
    }
    const survivor = String(event.newObjectId ?? event.primaryObjectId ?? event.objectId);
    events.push({ eventId, entity, externalId: survivor, kind, occurredAt });
    for (const merged of event.mergedObjectIds ?? []) {
      if (String(merged) !== survivor) {
        events.push({
          eventId: `${eventId}:${merged}`,
          entity,
          externalId: String(merged),
          kind: "deleted",
          occurredAt,
        });
      }
    }
  }
  return events;
};

/** The connector's `webhooks` member. */
export const hubSpotWebhooks: ConnectorWebhooks<HubSpotConfig> = {
  verify: verifyHubSpotWebhook,
  parse: parseHubSpotWebhook,
};
