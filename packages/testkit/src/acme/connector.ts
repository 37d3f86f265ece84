import { createHmac, timingSafeEqual } from "node:crypto";
import {
  type ConnectorContext,
  type ConnectorWebhooks,
  defineConnector,
  defineEntity,
  NotFound,
  type WebhookEvent,
} from "@tandem/connector-sdk";
import { Effect, Option, Redacted, Schema, Stream } from "effect";

/*
 * The Acme CRM connector: the template for writing a connector. It is written
 * twice, once per authoring style, so both are exercised by the same tests:
 * `acmeConnector` in plain async TypeScript, `acmeEffectConnector` with Effect.
 */

/** Connection config. `token` is a secret: stored encrypted, never returned by the API. */
export const AcmeConfig = Schema.Struct({
  /** Base URL of the API, e.g. https://acme.test/api (the testkit fake). */
  baseUrl: Schema.String.pipe(Schema.pattern(/^https?:\/\//)),
  token: Schema.Redacted(Schema.NonEmptyString),
  /** Records per page. Default 100 (the API allows up to 1000). */
  pageSize: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.between(1, 1000))),
  /** Shared secret of the webhook subscription; without it every webhook is refused. */
  webhookSecret: Schema.optional(Schema.Redacted(Schema.NonEmptyString)),
});
export type AcmeConfig = typeof AcmeConfig.Type;

/**
 * The normalized contact. The wire format happens to match it field for field;
 * a real connector keeps the vendor's wire schema apart and maps it here.
 */
export const AcmeContact = Schema.Struct({
  id: Schema.NonEmptyString,
  firstName: Schema.String,
  lastName: Schema.String,
  email: Schema.String,
  lifecycleStage: Schema.String,
  updatedAt: Schema.Date,
});
export type AcmeContact = typeof AcmeContact.Type;

const auth = (ctx: ConnectorContext<AcmeConfig>) => ({ authorization: `Bearer ${Redacted.value(ctx.config.token)}` });

interface ContactsPage {
  readonly data: ReadonlyArray<unknown>;
  readonly nextCursor: string | null;
}

/** Acme answers `x-ratelimit-remaining` and `x-ratelimit-reset-ms` on every response. */
const rateLimit = {
  requestsPerSecond: 100,
  burst: 100,
  fromHeaders: (h: Headers) => ({
    remaining: Number(h.get("x-ratelimit-remaining") ?? Number.NaN),
    resetAfterMs: Number(h.get("x-ratelimit-reset-ms") ?? Number.NaN),
  }),
};

/** Signatures older than this are refused (replay protection). */
const SIGNATURE_TOLERANCE_MS = 5 * 60_000;

/** HMAC-SHA256 over `${t}.${rawBody}`, hex, as Acme signs its webhooks (`x-acme-signature: t=...,v1=...`). */
export const acmeSignature = (secret: string, timestampSeconds: number, rawBody: string) =>
  createHmac("sha256", secret).update(`${timestampSeconds}.${rawBody}`).digest("hex");

/** The body Acme POSTs: a batch of events. */
const AcmeWebhookBody = Schema.Struct({
  events: Schema.Array(
    Schema.Struct({
      id: Schema.String,
      type: Schema.Literal("contact.created", "contact.updated", "contact.deleted", "contact.restored"),
      objectId: Schema.String,
      occurredAt: Schema.String,
    }),
  ),
});

/**
 * Inbound webhooks. Acme sends `x-acme-signature: t=<unix seconds>,v1=<hex>`; a
 * subscription is confirmed by answering `GET ?challenge=<token>` with the token.
 */
const acmeWebhooks: ConnectorWebhooks<AcmeConfig> = {
  verify: ({ config, now }, request) => {
    if (config.webhookSecret === undefined) return false;
    const header = request.headers.get("x-acme-signature") ?? "";
    const parts = Object.fromEntries(header.split(",").map((p) => p.trim().split("=", 2) as [string, string]));
    const t = Number(parts.t);
    if (!Number.isFinite(t) || Math.abs(now.getTime() - t * 1000) > SIGNATURE_TOLERANCE_MS) return false;
    const expected = Buffer.from(acmeSignature(Redacted.value(config.webhookSecret), t, request.rawBody), "hex");
    const given = Buffer.from(parts.v1 ?? "", "hex");
    return given.length === expected.length && timingSafeEqual(given, expected);
  },
  parse: (request) => {
    const body = Schema.decodeUnknownSync(Schema.parseJson(AcmeWebhookBody))(request.rawBody);
    return body.events.map(
      (e): WebhookEvent => ({
        eventId: e.id,
        entity: "contacts",
        externalId: e.objectId,
        kind:
          e.type === "contact.created"
            ? "created"
            : e.type === "contact.deleted"
              ? "deleted"
              : e.type === "contact.restored"
                ? "restored"
                : "updated",
        occurredAt: new Date(e.occurredAt),
      }),
    );
  },
  handshake: (request) => {
    if (request.method !== "GET") return null;
    const challenge = new URL(request.url).searchParams.get("challenge");
    return challenge === null ? null : { status: 200, body: challenge };
  },
};

/** Async style: async generators and promises; errors are thrown. */
export const acmeConnector = defineConnector({
  name: "acme-crm",
  version: "1.0.0",
  config: AcmeConfig,
  rateLimit,
  webhooks: acmeWebhooks,
  check: async (ctx) => {
    await ctx.http.request({ url: `${ctx.config.baseUrl}/contacts`, query: { limit: 1 }, headers: auth(ctx) });
  },
  entities: {
    contacts: defineEntity<AcmeContact, AcmeConfig>({
      record: AcmeContact,
      primaryKey: (c) => c.id,
      updatedAt: (c) => c.updatedAt,
      // GET /contacts: keyset paging by id; `updatedAfter` is inclusive.
      read: async function* (ctx, { since, cursor }) {
        let next: string | undefined = cursor;
        do {
          const response = await ctx.http.request({
            url: `${ctx.config.baseUrl}/contacts`,
            headers: auth(ctx),
            query: { limit: ctx.config.pageSize ?? 100, cursor: next, updatedAfter: since?.toISOString() },
          });
          const body = response.body as ContactsPage;
          next = body?.nextCursor ?? undefined;
          yield { records: body?.data, cursor: next } as never;
        } while (next !== undefined);
      },
      readIds: async function* (ctx) {
        let next: string | undefined;
        do {
          const response = await ctx.http.request({
            url: `${ctx.config.baseUrl}/contacts/ids`,
            headers: auth(ctx),
            query: { limit: 1000, cursor: next },
          });
          const body = response.body as { ids: Array<string>; nextCursor: string | null };
          next = body.nextCursor ?? undefined;
          yield body.ids;
        } while (next !== undefined);
      },
      get: async (ctx, id) => {
        const response = await ctx.http.request({
          url: `${ctx.config.baseUrl}/contacts/${encodeURIComponent(id)}`,
          headers: auth(ctx),
        });
        return response.status === 404 ? null : (response.body as AcmeContact);
      },
      write: {
        update: async (ctx, id, changes) => {
          const response = await ctx.http.request({
            method: "PATCH",
            url: `${ctx.config.baseUrl}/contacts/${encodeURIComponent(id)}`,
            headers: auth(ctx),
            body: Schema.encodeSync(Schema.partial(AcmeContact))(changes),
          });
          if (response.status === 404) throw new NotFound({ externalId: id });
          return response.body as AcmeContact;
        },
      },
      deletes: "reconcile",
      webhooks: true,
      criticalFields: ["email", "lifecycleStage"],
    }),
  },
});

/** Effect style: the same API through Effects and Streams; errors are typed failures. */
export const acmeEffectConnector = defineConnector({
  name: "acme-crm-effect",
  version: "1.0.0",
  config: AcmeConfig,
  rateLimit,
  entities: {
    contacts: defineEntity<AcmeContact, AcmeConfig>({
      record: AcmeContact,
      primaryKey: (c) => c.id,
      updatedAt: (c) => c.updatedAt,
      read: (ctx, { since, cursor }) =>
        Stream.paginateEffect(cursor, (current) =>
          Effect.map(
            Effect.tryPromise({
              try: () =>
                ctx.http.request({
                  url: `${ctx.config.baseUrl}/contacts`,
                  headers: auth(ctx),
                  query: { limit: ctx.config.pageSize ?? 100, cursor: current, updatedAfter: since?.toISOString() },
                }),
              // ctx.http throws our error reasons; keep them as the typed failure.
              catch: (e) => e as never,
            }),
            (response) => {
              const body = response.body as ContactsPage;
              const next = body?.nextCursor ?? undefined;
              return [{ records: body?.data, cursor: next } as never, Option.fromNullable(next)] as const;
            },
          ),
        ),
      get: (ctx, id) =>
        Effect.tryPromise({
          try: () => ctx.http.request({ url: `${ctx.config.baseUrl}/contacts/${id}`, headers: auth(ctx) }),
          catch: (e) => e as never,
        }).pipe(
          Effect.flatMap((response) =>
            response.status === 404 ? new NotFound({ externalId: id }) : Effect.succeed(response.body as AcmeContact),
          ),
        ),
    }),
  },
});
