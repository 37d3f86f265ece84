import { randomUUID } from "node:crypto";
import { Clock, Context, Effect, Layer, Schema } from "effect";
import { Connections } from "./Connections.ts";
import type { InboundWebhookRequest, WebhookEvent } from "./Connector.ts";
import { Database } from "./Database.ts";
import { ResourceNotFound } from "./Errors.ts";
import { JobQueue } from "./JobQueue.ts";
import { WEBHOOK_EVENT_JOB_KIND, type WebhookEventPayload } from "./Syncs.ts";

/** The signature did not verify (answered 401). */
export class WebhookRejected extends Schema.TaggedError<WebhookRejected>()("WebhookRejected", {
  message: Schema.String,
}) {}

/** The body could not be parsed into events (answered 400). */
export class MalformedWebhook extends Schema.TaggedError<MalformedWebhook>()("MalformedWebhook", {
  message: Schema.String,
}) {}

export interface WebhookReceipt {
  /** Events stored and queued now. */
  readonly accepted: number;
  /** Events seen before (same event id on this connection): stored once, never re-queued. */
  readonly duplicates: number;
  /** Events about entities this connector does not sync. */
  readonly ignored: number;
}

/** How long a resolved connection serves webhook verification before it is read again. */
const CONFIG_CACHE_MS = 5_000;

const kinds = new Set(["created", "updated", "deleted", "merged", "restored"]);

const validEvent = (e: WebhookEvent): boolean =>
  typeof e?.eventId === "string" &&
  e.eventId.length > 0 &&
  typeof e.entity === "string" &&
  typeof e.externalId === "string" &&
  e.externalId.length > 0 &&
  kinds.has(e.kind) &&
  e.occurredAt instanceof Date &&
  !Number.isNaN(e.occurredAt.getTime());

/**
 * Inbound vendor webhooks. `receive` verifies the signature with the
 * connection's config, parses the events, and stores them durably (deduplicated
 * by event id) together with their jobs in one transaction, before the HTTP
 * answer: an acknowledged event is never lost. Events about one record within a
 * request coalesce into one job; the engine's ordering check makes a late or
 * repeated event harmless.
 */
export class InboundWebhooks extends Context.Tag("@tandem/core/InboundWebhooks")<
  InboundWebhooks,
  {
    /**
     * Answers one request: the connector's subscription handshake if it recognizes
     * one, else (for a POST) verifies, stores and queues the events.
     */
    readonly receive: (
      connector: string,
      connectionId: string,
      request: InboundWebhookRequest,
    ) => Effect.Effect<
      | { readonly _tag: "Handshake"; readonly status: number; readonly body: string }
      | ({ readonly _tag: "Receipt" } & WebhookReceipt),
      ResourceNotFound | WebhookRejected | MalformedWebhook
    >;
  }
>() {
  static readonly layer = Layer.effect(
    InboundWebhooks,
    Effect.gen(function* () {
      const db = yield* Database;
      const connections = yield* Connections;
      const queue = yield* JobQueue;

      // Vendors post in bursts to one endpoint: the decrypted, decoded connection is kept for a
      // few seconds instead of being read and decrypted per request. A config change (a new
      // webhook secret) therefore reaches verification within CONFIG_CACHE_MS.
      const cache = new Map<
        string,
        { readonly at: number; readonly value: Effect.Effect.Success<ReturnType<typeof connections.resolveById>> }
      >();
      const resolveCached = (connectionId: string) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis;
          const hit = cache.get(connectionId);
          if (hit !== undefined && now - hit.at < CONFIG_CACHE_MS) return hit.value;
          const value = yield* connections.resolveById(connectionId);
          if (cache.size > 10_000) cache.clear();
          cache.set(connectionId, { at: now, value });
          return value;
        });

      const resolve = (connector: string, connectionId: string) =>
        Effect.gen(function* () {
          const resolved = yield* resolveCached(connectionId);
          // The connector in the URL must match: a mismatch is indistinguishable from a missing connection.
          if (resolved.connector.name !== connector || resolved.connector.webhooks === undefined) {
            return yield* new ResourceNotFound({ resource: "webhook endpoint", id: `${connector}/${connectionId}` });
          }
          return { ...resolved, webhooks: resolved.connector.webhooks };
        });

      return {
        receive: Effect.fn("InboundWebhooks.receive")(function* (connector, connectionId, request) {
          const resolved = yield* resolve(connector, connectionId);
          const handshake = resolved.webhooks.handshake?.(request) ?? null;
          if (handshake !== null) return { _tag: "Handshake" as const, ...handshake };
          if (request.method === "GET") return { _tag: "Handshake" as const, status: 405, body: "POST events here" };
          const now = new Date(yield* Clock.currentTimeMillis);
          const verified = yield* Effect.try(() =>
            resolved.webhooks.verify({ config: resolved.config, now }, request),
          ).pipe(Effect.orElseSucceed(() => false));
          if (!verified) return yield* new WebhookRejected({ message: "webhook signature did not verify" });
          const parsed = yield* Effect.try({
            try: () => resolved.webhooks.parse(request),
            catch: (e) =>
              new MalformedWebhook({ message: `cannot parse webhook: ${e instanceof Error ? e.message : String(e)}` }),
          });
          if (!Array.isArray(parsed) || !parsed.every(validEvent)) {
            return yield* new MalformedWebhook({ message: "webhook events are malformed" });
          }
          const known = parsed.filter((e) => e.entity in resolved.connector.entities);
          const tenantId = resolved.row.tenant_id;
          const stored = yield* db.transaction(
            Effect.gen(function* () {
              if (known.length === 0) return [];
              const inserted = yield* db
                .query((k) =>
                  k
                    .insertInto("webhook_events")
                    .values(
                      known.map((e) => ({
                        id: randomUUID(),
                        tenant_id: tenantId,
                        connection_id: connectionId,
                        event_id: e.eventId,
                        entity: e.entity,
                        external_id: e.externalId,
                        kind: e.kind,
                        occurred_at: e.occurredAt,
                      })),
                    )
                    .onConflict((oc) => oc.columns(["connection_id", "event_id"]).doNothing())
                    .returning(["id", "entity", "external_id", "kind", "occurred_at"])
                    .execute(),
                )
                .pipe(
                  // Deleted after it was cached: the endpoint is gone.
                  Effect.catchTag("ConstraintViolation", (e) =>
                    e.kind === "foreign_key"
                      ? Effect.sync(() => cache.delete(connectionId)).pipe(
                          Effect.zipRight(
                            Effect.fail(
                              new ResourceNotFound({
                                resource: "webhook endpoint",
                                id: `${connector}/${connectionId}`,
                              }),
                            ),
                          ),
                        )
                      : Effect.die(e),
                  ),
                );
              // One job per record: the job reads the record's current state, so later events of
              // the same request add nothing but their ids (marked processed together).
              const byRecord = new Map<string, WebhookEventPayload>();
              for (const row of inserted) {
                const key = `${row.entity}\u0000${row.external_id}`;
                const previous = byRecord.get(key);
                const newer = previous === undefined || new Date(previous.occurredAt) <= row.occurred_at;
                byRecord.set(key, {
                  connectionId,
                  entity: row.entity,
                  externalId: row.external_id,
                  kind: newer ? (row.kind as WebhookEventPayload["kind"]) : previous!.kind,
                  occurredAt: newer ? row.occurred_at.toISOString() : previous!.occurredAt,
                  eventRowIds: [...(previous?.eventRowIds ?? []), row.id],
                });
              }
              yield* queue
                .enqueueMany(
                  [...byRecord.values()].map((payload) => ({
                    kind: WEBHOOK_EVENT_JOB_KIND,
                    payload,
                    priority: "webhook" as const,
                    tenantId,
                    connectionId,
                  })),
                )
                .pipe(Effect.orDie);
              return inserted;
            }),
          );
          // PGlite has no NOTIFY: wake this process's workers now that the jobs are committed.
          if (stored.length > 0) yield* queue.nudge;
          return {
            _tag: "Receipt" as const,
            accepted: stored.length,
            duplicates: known.length - stored.length,
            ignored: parsed.length - known.length,
          };
        }),
      };
    }),
  );
}
