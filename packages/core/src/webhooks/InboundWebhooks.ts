import { randomUUID } from "node:crypto";
import type { InboundWebhookRequest, WebhookAnswer, WebhookEvent, WebhookReceipt } from "@tandem/connector-sdk";
import { Cause, Chunk, Clock, Context, Effect, Exit, Layer, Schema } from "effect";
import { sql } from "kysely";
import { Database, DatabaseUnavailable } from "../db/Database.ts";
import * as GroupCommit from "../db/GroupCommit.ts";
import { preparedAs } from "../db/PreparedStatements.ts";
import { isStorableDate, MAX_IDENTIFIER_LENGTH, textIssue } from "../db/Storable.ts";
import { ResourceNotFound } from "../errors/Errors.ts";
import { JobQueue } from "../queue/JobQueue.ts";
import { WEBHOOK_EVENT_JOB_KIND } from "../sync/webhookEventJob.ts";
import { Connections } from "../tenancy/Connections.ts";

/** The signature did not verify (answered 401). */
export class WebhookRejected extends Schema.TaggedError<WebhookRejected>()("WebhookRejected", {
  message: Schema.String,
}) {}

/** The body could not be parsed into events (answered 400). */
export class MalformedWebhook extends Schema.TaggedError<MalformedWebhook>()("MalformedWebhook", {
  message: Schema.String,
}) {}

/** Deliveries stored by one statement, at most (HubSpot sends up to 100 events in one). */
const MAX_DELIVERIES_PER_COMMIT = 200;

/** A verified delivery's events about entities the connector syncs, waiting to be stored. */
interface Delivery {
  readonly tenantId: string;
  readonly connector: string;
  readonly connectionId: string;
  readonly events: ReadonlyArray<WebhookEvent>;
}

/** How long a resolved connection serves webhook verification before it is read again. */
const CONFIG_CACHE_MS = 5_000;

const kinds = new Set(["created", "updated", "deleted", "merged", "restored"]);

/** Characters of an entity name, at most (connectors' entity names are short words). */
const MAX_ENTITY_LENGTH = 100;

/** Why a text field of an event cannot be stored, if it cannot. */
const textFieldIssue = (name: string, value: unknown, maxLength: number): string | undefined => {
  if (typeof value !== "string" || value.length === 0) return `${name} must be a non-empty string`;
  const issue = textIssue(value, maxLength);
  return issue === undefined ? undefined : `${name} ${issue}`;
};

/**
 * Why a parsed event cannot be stored, if it cannot. Checked here, for every connector, before
 * the event joins the intake's shared statement: a value PostgreSQL refuses there (a NUL or a
 * lone surrogate in an id, a date before year 1, an id too large for its index) failed every
 * delivery of the statement, other tenants' included.
 */
const eventIssue = (e: WebhookEvent): string | undefined => {
  if (typeof e !== "object" || e === null) return "is not an event";
  return (
    textFieldIssue("eventId", e.eventId, MAX_IDENTIFIER_LENGTH) ??
    textFieldIssue("entity", e.entity, MAX_ENTITY_LENGTH) ??
    textFieldIssue("externalId", e.externalId, MAX_IDENTIFIER_LENGTH) ??
    (kinds.has(e.kind) ? undefined : "kind must be created, updated, deleted, merged or restored") ??
    (isStorableDate(e.occurredAt) ? undefined : "occurredAt must be a valid date between years 1 and 9999")
  );
};

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
      | ({
          readonly _tag: "Receipt";
          /** The connector's own acknowledgement (`ConnectorWebhooks.acknowledge`), when it has one. */
          readonly answer?: WebhookAnswer;
        } & WebhookReceipt),
      ResourceNotFound | WebhookRejected | MalformedWebhook
    >;
  }
>() {
  static readonly layer = Layer.scoped(
    InboundWebhooks,
    Effect.gen(function* () {
      const db = yield* Database;
      const connections = yield* Connections;
      const queue = yield* JobQueue;

      // Vendors post in bursts to one endpoint: the decrypted, decoded connection is kept for a
      // few seconds instead of being read and decrypted per request. A config change (a new
      // webhook secret) therefore reaches verification within CONFIG_CACHE_MS. One read per
      // connection at a time: requests arriving while it runs wait for it. When every request
      // read for itself, each expiry under load started dozens of reads at once; the pool opened
      // new connections for them, and the deliveries' commit waited 100 to 200 ms behind the
      // burst (bench/README.md, "What was profiled").
      type Resolved = Effect.Effect.Success<ReturnType<typeof connections.resolveById>>;
      const cache = new Map<
        string,
        { readonly at: number; readonly lookup: Effect.Effect<Resolved, ResourceNotFound> }
      >();
      const resolveCached = (connectionId: string) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis;
          const hit = cache.get(connectionId);
          if (hit !== undefined && now - hit.at < CONFIG_CACHE_MS) return yield* hit.lookup;
          const lookup = yield* Effect.cached(connections.resolveById(connectionId));
          if (cache.size > 10_000) cache.clear();
          cache.set(connectionId, { at: now, lookup });
          // Only a found connection is kept: a missing one (or a failed read) is read again next time.
          return yield* lookup.pipe(
            Effect.onExit((exit) =>
              Exit.isSuccess(exit)
                ? Effect.void
                : Effect.sync(() => {
                    if (cache.get(connectionId)?.lookup === lookup) cache.delete(connectionId);
                  }),
            ),
          );
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

      /**
       * Stores a batch of deliveries in ONE statement: their events (each new event id once) and
       * a job per delivery, built by the statement from the events it stored. An event is never
       * stored without its job (a vendor's retry of it would be a duplicate and never queued
       * again), and a delivery of duplicates only queues nothing. The job lists the delivery's
       * records: a record's events coalesce (the job reads its current state, so later events
       * add only their ids, marked processed together), with the newest event's kind and time.
       * Answers, per delivery, how many events were new.
       */
      const storeAll = (batch: ReadonlyArray<Delivery>) =>
        Effect.gen(function* () {
          const owner = new Map<string, number>();
          const events: Array<Record<string, unknown>> = [];
          batch.forEach((d, delivery) => {
            d.events.forEach((e, position) => {
              const id = randomUUID();
              owner.set(id, delivery);
              events.push({
                id,
                tenant_id: d.tenantId,
                connection_id: d.connectionId,
                event_id: e.eventId,
                entity: e.entity,
                external_id: e.externalId,
                kind: e.kind,
                occurred_at: e.occurredAt.toISOString(),
                delivery,
                position,
              });
            });
          });
          // The queue's columns (priority, attempts, times) for every job of the batch, as it enqueues one.
          const [job] = yield* queue
            .prepare([{ kind: WEBHOOK_EVENT_JOB_KIND, payload: {}, priority: "webhook" }])
            .pipe(Effect.orDie);
          // A duplicate event id, stored earlier or earlier in this batch, is skipped by the conflict clause.
          const { rows: stored } = yield* db.query((k) =>
            sql<{ id: string }>`${preparedAs("webhook_intake")}
              with input as (
                select * from jsonb_to_recordset(${JSON.stringify(events)}::jsonb) as i(id uuid, tenant_id uuid,
                  connection_id uuid, event_id text, entity text, external_id text, kind text, occurred_at timestamptz,
                  delivery integer, position integer)
              ), stored as (
                insert into webhook_events (id, tenant_id, connection_id, event_id, entity, external_id, kind, occurred_at)
                select id, tenant_id, connection_id, event_id, entity, external_id, kind, occurred_at from input
                on conflict (connection_id, event_id) do nothing
                returning id
              ), records as (
                select i.delivery, i.tenant_id, i.connection_id, min(i.position) as position,
                  jsonb_build_object(
                    'entity', i.entity, 'externalId', i.external_id,
                    'kind', (array_agg(i.kind order by i.occurred_at desc, i.position desc))[1],
                    'occurredAt', max(i.occurred_at),
                    'eventRowIds', jsonb_agg(i.id order by i.position)) as record
                from input i join stored s on s.id = i.id
                group by i.delivery, i.tenant_id, i.connection_id, i.entity, i.external_id
              ), queued as (
                insert into jobs (id, kind, payload, priority, tenant_id, connection_id, run_at, max_attempts, created_at, updated_at)
                select gen_random_uuid(), ${job!.kind},
                  jsonb_build_object('connectionId', r.connection_id, 'records', jsonb_agg(r.record order by r.position)),
                  ${job!.priority}, r.tenant_id, r.connection_id, ${job!.run_at}, ${job!.max_attempts},
                  ${job!.created_at}, ${job!.created_at}
                from records r
                group by r.delivery, r.tenant_id, r.connection_id
                returning 1
              )
              select id from stored`.execute(k),
          );
          const accepted = batch.map(() => 0);
          for (const row of stored) accepted[owner.get(row.id)!]!++;
          return accepted;
        });

      /** A connection deleted after it was cached: its endpoint is gone. */
      const endpointGone = (d: Delivery) =>
        Effect.sync(() => cache.delete(d.connectionId)).pipe(
          Effect.zipRight(
            Effect.fail(new ResourceNotFound({ resource: "webhook endpoint", id: `${d.connector}/${d.connectionId}` })),
          ),
        );

      /**
       * Deliveries are group-committed: concurrent requests share one statement, instead of
       * four round trips each (begin, events, jobs, commit), which under load were most of a
       * request's time. A batch that fails (a deleted connection, a value the database refuses)
       * is written again one delivery per statement (GroupCommit's retry apart), so only the
       * delivery at fault fails: a deleted connection's answers 404, and no other tenant's
       * delivery shares another's failure. Not when the database is unreachable: every delivery
       * would meet that alone too.
       */
      const deliveries = yield* GroupCommit.make<Delivery, { readonly accepted: number }, ResourceNotFound>({
        maxBatch: MAX_DELIVERIES_PER_COMMIT,
        // One commit in flight: deliveries arriving meanwhile share the next one. With two, at
        // a steady 500 deliveries/s nearly every delivery found a free writer and went alone
        // (1.3 per statement), which doubled the database's work and the ack's tail; flat out,
        // one writer stored as many events per second (bench/README.md).
        concurrency: 1,
        write: (batch) =>
          storeAll(batch).pipe(
            Effect.map((accepted) => accepted.map((n) => Exit.succeed({ accepted: n }))),
            Effect.catchTag("ConstraintViolation", (e) =>
              e.kind === "foreign_key" && batch.length === 1 ? endpointGone(batch[0]!) : Effect.die(e),
            ),
            // The jobs are committed: wake this process's workers and announce them to the others'.
            Effect.tap(() => queue.nudge),
          ),
        retryApart: (cause) => !Chunk.some(Cause.defects(cause), (d) => d instanceof DatabaseUnavailable),
      });

      return {
        // A span per delivery, without the call-site stack trace Effect.fn captures on every call
        // (on this route, at thousands of requests per second, a visible cost for a trace detail).
        receive: (connector, connectionId, request) =>
          Effect.gen(function* () {
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
              yield* Effect.logWarning(
                `webhook delivery to ${connector}/${connectionId} refused: event ${index}: ${issue}`,
              );
              return yield* new MalformedWebhook({ message: `webhook event ${index} is malformed: ${issue}` });
            }
            const known = parsed.filter((e) => e.entity in resolved.connector.entities);
            const stored =
              known.length === 0
                ? { accepted: 0 }
                : yield* deliveries.submit({
                    tenantId: resolved.row.tenant_id,
                    connector,
                    connectionId,
                    events: known,
                  });
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
          }).pipe(Effect.withSpan("InboundWebhooks.receive", { captureStackTrace: false })),
      };
    }),
  );
}
