import type { InboundWebhookRequest, WebhookAnswer, WebhookReceipt } from "@tandem/connector-sdk";
import { Context, Effect, Layer, Schema } from "effect";
import { Database } from "../db/Database.ts";
import type { ResourceNotFound } from "../errors/Errors.ts";
import { JobQueue } from "../queue/JobQueue.ts";
import { Connections } from "../tenancy/Connections.ts";
import { makeIntake } from "./inbound/intake.ts";
import { receiveWebhook } from "./inbound/receive.ts";
import { makeWebhookEndpoints } from "./inbound/webhookEndpoints.ts";

/** The signature did not verify (answered 401). */
export class WebhookRejected extends Schema.TaggedError<WebhookRejected>()("WebhookRejected", {
  message: Schema.String,
}) {}

/** The body could not be parsed into events (answered 400). */
export class MalformedWebhook extends Schema.TaggedError<MalformedWebhook>()("MalformedWebhook", {
  message: Schema.String,
}) {}

/** How a webhook request is answered: the connector's handshake, or the receipt of its events. */
export type InboundWebhookResult =
  | { readonly _tag: "Handshake"; readonly status: number; readonly body: string }
  | ({
      readonly _tag: "Receipt";
      /** The connector's own acknowledgement (`ConnectorWebhooks.acknowledge`), when it has one. */
      readonly answer?: WebhookAnswer;
    } & WebhookReceipt);

/** The intake's operations; see InboundWebhooks. */
export interface InboundWebhooksService {
  /**
   * Answers one request: the connector's subscription handshake if it recognizes
   * one, else (for a POST) verifies, stores and queues the events.
   */
  readonly receive: (
    connector: string,
    connectionId: string,
    request: InboundWebhookRequest,
  ) => Effect.Effect<InboundWebhookResult, ResourceNotFound | WebhookRejected | MalformedWebhook>;
}

/**
 * Inbound vendor webhooks. `receive` verifies the signature with the
 * connection's config, parses the events, and stores them durably (deduplicated
 * by event id) together with a job per delivery in one statement, before the
 * HTTP answer: an acknowledged event is never lost. The job syncs each record the
 * delivery's new events name, once however many events name it; the engine's
 * ordering check makes a late or repeated event harmless.
 */
export class InboundWebhooks extends Context.Tag("@tandem/core/InboundWebhooks")<
  InboundWebhooks,
  InboundWebhooksService
>() {
  /** Needs Database, Connections and JobQueue. */
  static readonly layerNoDeps = Layer.scoped(
    InboundWebhooks,
    Effect.suspend(() => makeInboundWebhooks),
  );

  /** Needs Database and Connections' roots (CredentialCipher, ConnectorRegistry). */
  static readonly layer = InboundWebhooks.layerNoDeps.pipe(
    Layer.provide(Layer.mergeAll(Connections.layer, JobQueue.layer)),
  );
}

const makeInboundWebhooks = Effect.gen(function* () {
  const db = yield* Database;
  const queue = yield* JobQueue;
  const endpoints = makeWebhookEndpoints(yield* Connections);
  const intake = yield* makeIntake({ db, queue, forget: endpoints.forget });
  return {
    receive: (connector, connectionId, request) =>
      receiveWebhook({ endpoints, intake }, connector, connectionId, request),
  } satisfies InboundWebhooksService;
});
