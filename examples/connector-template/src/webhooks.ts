import { type ConnectorWebhooks, constantTimeEqual, hmacDigest, type WebhookEvent } from "@tandem/connector-sdk";
import { Redacted, Schema } from "effect";
import type { TaskboardConfig } from "./config.ts";
import { WebhookWire } from "./wire.ts";

/** Deliveries signed longer ago than this are refused (replays). */
export const signatureToleranceMs = 5 * 60_000;

/** Taskboard signs `${timestamp}.${body}` with HMAC-SHA256 (hex) in `x-taskboard-signature`. */
export const taskboardSignature = (secret: string, timestampMs: number, rawBody: string) =>
  hmacDigest(secret, `${timestampMs}.${rawBody}`);

const kinds = { "task.created": "created", "task.updated": "updated", "task.deleted": "deleted" } as const;

/** Inbound webhooks: HMAC signature with a timestamp window, compared in constant time. */
export const taskboardWebhooks: ConnectorWebhooks<TaskboardConfig> = {
  verify: ({ config, now }, request) => {
    if (config.webhookSecret === undefined) return false;
    const timestamp = Number(request.headers.get("x-taskboard-timestamp"));
    if (!Number.isFinite(timestamp) || Math.abs(now.getTime() - timestamp) > signatureToleranceMs) return false;
    const expected = taskboardSignature(Redacted.value(config.webhookSecret), timestamp, request.rawBody);
    return constantTimeEqual(expected, request.headers.get("x-taskboard-signature") ?? "");
  },
  parse: (request) =>
    Schema.decodeUnknownSync(Schema.parseJson(WebhookWire))(request.rawBody).events.map(
      (event): WebhookEvent => ({
        eventId: event.event_id,
        entity: "tasks",
        externalId: event.task_id,
        kind: kinds[event.type],
        occurredAt: new Date(event.occurred_at),
      }),
    ),
};
