import type { InboundWebhookRequest, WebhookReceipt } from "@tandem/connector-sdk";
import { Clock, Effect } from "effect";
import type { ResourceNotFound } from "../../errors/Errors.ts";
import { type InboundWebhookResult, MalformedWebhook, WebhookRejected } from "../InboundWebhooks.ts";
import { eventIssue } from "./eventIssue.ts";
import type { Intake } from "./intake.ts";
import type { WebhookEndpoints } from "./webhookEndpoints.ts";

/**
 * Answers one request: the connector's subscription handshake if it recognizes one, else (for a
 * POST) verifies, stores and queues the events, and answers the connector's acknowledgement.
 * A span per delivery, without the call-site stack trace Effect.fn captures on every call (on
 * this route, at thousands of requests per second, a visible cost for a trace detail).
 */
export const receiveWebhook = (
  deps: { readonly endpoints: WebhookEndpoints; readonly intake: Intake },
  connector: string,
  connectionId: string,
  request: InboundWebhookRequest,
): Effect.Effect<InboundWebhookResult, ResourceNotFound | WebhookRejected | MalformedWebhook> =>
  Effect.gen(function* () {
    const resolved = yield* deps.endpoints.resolve(connector, connectionId);
    const handshake = resolved.webhooks.handshake?.(request) ?? null;
    if (handshake !== null) return { _tag: "Handshake" as const, ...handshake };
    if (request.method === "GET") return { _tag: "Handshake" as const, status: 405, body: "POST events here" };
    const now = new Date(yield* Clock.currentTimeMillis);
    const verified = yield* Effect.try(() => resolved.webhooks.verify({ config: resolved.config, now }, request)).pipe(
      Effect.orElseSucceed(() => false),
    );
    if (!verified) return yield* new WebhookRejected({ message: "webhook signature did not verify" });
    const parsed = yield* Effect.try({
      try: () => resolved.webhooks.parse(request),
      catch: (e) =>
        new MalformedWebhook({
          message: `cannot parse webhook: ${e instanceof Error ? e.message : String(e)}`,
        }),
    });
    if (!Array.isArray(parsed)) return yield* new MalformedWebhook({ message: "webhook events are malformed" });
    // One event that cannot be stored refuses the whole delivery with a 400, which vendors
    // do not retry; storing the rest would answer 2xx and the bad event would be lost
    // without its sender knowing. The records it named are caught up by the next delta sync.
    for (const [index, event] of parsed.entries()) {
      const issue = eventIssue(event);
      if (issue === undefined) continue;
      yield* Effect.logWarning(`webhook delivery to ${connector}/${connectionId} refused: event ${index}: ${issue}`);
      return yield* new MalformedWebhook({ message: `webhook event ${index} is malformed: ${issue}` });
    }
    const known = parsed.filter((e) => e.entity in resolved.connector.entities);
    const stored =
      known.length === 0
        ? { accepted: 0 }
        : yield* deps.intake({ tenantId: resolved.row.tenant_id, connector, connectionId, events: known });
    const receipt: WebhookReceipt = {
      accepted: stored.accepted,
      duplicates: known.length - stored.accepted,
      ignored: parsed.length - known.length,
    };
    const acknowledge = resolved.webhooks.acknowledge;
    if (acknowledge === undefined) return { _tag: "Receipt" as const, ...receipt };
    // The events are stored: a connector whose acknowledgement fails still gets a 2xx
    // (the default one), and the failure is logged as the connector's defect.
    const answer = yield* Effect.try({
      try: () => acknowledge(receipt),
      catch: (e) => (e instanceof Error ? e.message : String(e)),
    }).pipe(
      Effect.filterOrFail(
        (a) => Number.isInteger(a?.status) && a.status >= 200 && a.status < 300,
        (a) => `it answered status ${String(a?.status)}, not a 2xx`,
      ),
      Effect.tapError((reason) =>
        Effect.logError(
          `webhook acknowledgement of connector ${connector} failed (${reason}); answered the default receipt`,
        ),
      ),
      Effect.option,
    );
    return {
      _tag: "Receipt" as const,
      ...receipt,
      ...(answer._tag === "Some" ? { answer: answer.value } : {}),
    };
  }).pipe(Effect.withSpan("InboundWebhooks.receive", { captureStackTrace: false }));
