import type { Effect, Redacted, Schema, Stream } from "effect";
import { Schema as S } from "effect";
import type { ConflictPolicy } from "./ConflictPolicy.ts";

/* ------------------------------------------------------------------------------------------------
 * Error reasons a connector raises (throw from async code, or fail with them in Effect).
 * The engine's retry policy is keyed by these tags (one place, see the job queue).
 * --------------------------------------------------------------------------------------------- */

/** The vendor asked us to slow down; retried after `retryAfterMs` (at least). */
export class RateLimited extends S.TaggedError<RateLimited>()("RateLimited", {
  retryAfterMs: S.Number,
  message: S.optionalWith(S.String, { default: () => "rate limited" }),
}) {}

/** A transient failure (5xx, timeout, connection reset); retried with backoff. */
export class Unavailable extends S.TaggedError<Unavailable>()("Unavailable", {
  message: S.String,
  status: S.optional(S.Number),
}) {}

/** Credentials were refused; the engine refreshes them (where the connector can) and retries once. */
export class AuthExpired extends S.TaggedError<AuthExpired>()("AuthExpired", {
  message: S.optionalWith(S.String, { default: () => "credentials expired or revoked" }),
}) {}

/** One record is invalid; reported per record and never retried. */
export class InvalidRecord extends S.TaggedError<InvalidRecord>()("InvalidRecord", {
  message: S.String,
  externalId: S.optional(S.String),
}) {}

/** The remote object does not exist (or no longer exists). */
export class NotFound extends S.TaggedError<NotFound>()("NotFound", {
  message: S.optionalWith(S.String, { default: () => "not found" }),
  externalId: S.optional(S.String),
}) {}

/**
 * The remote rejected a write because its version moved on, or a unique key is taken. `reason`
 * tells the two apart where the connector knows: "version" (the record changed since the write's
 * `ifVersion`: Business Central's 409 `Request_EntityChanged`, Salesforce's 412 on
 * `If-Unmodified-Since`), which the engine settles as a three-way merge, and "duplicate" (another
 * record holds a unique value: HubSpot's 409 on an existing email; `externalId` is that record).
 */
export class Conflict extends S.TaggedError<Conflict>()("Conflict", {
  message: S.String,
  externalId: S.optional(S.String),
  reason: S.optional(S.Literal("version", "duplicate")),
}) {}

/** True for a `Conflict` whose reason is a moved version (checked by tag: a plugin may bundle its own SDK). */
export const isVersionConflict = (error: unknown): boolean =>
  typeof error === "object" &&
  error !== null &&
  (error as { _tag?: unknown })._tag === "Conflict" &&
  (error as { reason?: unknown }).reason === "version";

export type ConnectorError = RateLimited | Unavailable | AuthExpired | InvalidRecord | NotFound | Conflict;

const connectorErrorTags = new Set([
  "RateLimited",
  "Unavailable",
  "AuthExpired",
  "InvalidRecord",
  "NotFound",
  "Conflict",
]);

/** Tag check rather than instanceof: a plugin may bundle its own copy of the SDK. */
export const isConnectorError = (e: unknown): e is ConnectorError =>
  typeof e === "object" && e !== null && connectorErrorTags.has((e as { _tag?: unknown })._tag as string);

/* ------------------------------------------------------------------------------------------------
 * What the engine gives a connector.
 * --------------------------------------------------------------------------------------------- */

/** The HTTP client the engine owns: rate budget per connection, timeouts, status mapping. */
export interface ConnectorHttp {
  readonly request: (input: {
    readonly method?: string;
    readonly url: string;
    readonly headers?: Record<string, string>;
    readonly query?: Record<string, string | number | boolean | undefined>;
    readonly body?: unknown;
    readonly timeoutMs?: number;
    /**
     * For connectors with an `auth` hook: send the connection's access token as
     * `Authorization: Bearer ...` (and refresh it once on a 401). Default true; false for a
     * request that must not carry it (a pre-signed download URL on another host). A request
     * that sets its own `authorization` header is sent as it is.
     */
    readonly authenticate?: boolean;
  }) => Promise<{ readonly status: number; readonly headers: Headers; readonly body: unknown }>;
}

export interface ConnectorLogger {
  readonly debug: (message: string, fields?: Record<string, unknown>) => void;
  readonly info: (message: string, fields?: Record<string, unknown>) => void;
  readonly warn: (message: string, fields?: Record<string, unknown>) => void;
}

export interface ConnectorContext<Config> {
  /** The decoded connection config. Secrets are `Redacted`: `Redacted.value(config.token)`. */
  readonly config: Config;
  /** Authenticated with the connection's access token when the connector has an `auth` hook. */
  readonly http: ConnectorHttp;
  readonly log: ConnectorLogger;
  /** Aborted when the job is cancelled or the process shuts down. */
  readonly signal: AbortSignal;
  /** The connection's access grant, for connectors with an `auth` hook (see `AccessGrant`). */
  readonly auth: ConnectionAuth;
}

/* ------------------------------------------------------------------------------------------------
 * Credentials the engine manages: a connector says how to obtain an access token (`auth`), the
 * engine caches it per connection, refreshes it (one refresh at a time), keeps a rotated refresh
 * token encrypted with the connection, and sends it with every `ctx.http` request.
 * --------------------------------------------------------------------------------------------- */

/** What a connector's `auth` hook obtains from the vendor. */
export interface AccessGrant {
  /** Sent by `ctx.http` as `Authorization: Bearer <accessToken>`. */
  readonly accessToken: Redacted.Redacted<string>;
  /**
   * Lifetime from now, as the vendor states it (OAuth's `expires_in` x 1,000). The engine renews
   * the token shortly before (5 minutes, or half the lifetime if shorter). Omitted: used until a 401.
   */
  readonly expiresInMs?: number | undefined;
  /**
   * What the next call of `auth` needs, when the vendor rotated it (a new refresh token). The
   * engine stores it encrypted with the connection and passes it back as `refreshState`. Omit it
   * when nothing changed.
   */
  readonly refreshState?: Redacted.Redacted<string> | undefined;
  /** Facts that come with the token and that requests need (Salesforce's `instance_url`). Not secret. */
  readonly details?: Readonly<Record<string, string>> | undefined;
}

/** What the engine passes to a connector's `auth` hook. */
export interface AuthRequest<Config> {
  readonly config: Config;
  /** The last `refreshState` a grant returned for this connection; undefined until one did. */
  readonly refreshState: Redacted.Redacted<string> | undefined;
  /** The grant this one replaces (expired or refused); undefined for the first one in this process. */
  readonly previous: AccessGrant | undefined;
  /** An HTTP client like `ctx.http` that sends no access token (the token endpoint needs none). */
  readonly http: ConnectorHttp;
  readonly log: ConnectorLogger;
}

/**
 * Obtains an access token. Throw (or fail with) `AuthExpired` when the vendor refuses the grant:
 * the engine then fails the job with a message saying the connection's credentials must be
 * renewed, and does not retry it. Other errors (`Unavailable`, `RateLimited`) are retried as usual.
 */
export type ConnectorAuth<Config> = (request: AuthRequest<Config>) => MaybeEffect<AccessGrant>;

/** `ctx.auth`: the connection's current access grant. */
export interface ConnectionAuth {
  /** The current grant (cached by the engine until it expires or is refused). */
  readonly grant: () => Promise<AccessGrant>;
  /** A new grant whatever is cached: what a credential check must prove. */
  readonly refresh: () => Promise<AccessGrant>;
}

/** One page of a read; the engine checkpoints `cursor` after storing the page. */
export interface ReadPage {
  readonly records: ReadonlyArray<unknown>;
  /** Opaque resume point after this page; undefined when the read is finished. */
  readonly cursor?: string | undefined;
  /**
   * Ids the vendor reports deleted (tombstones, an archived flag, a deleted-records
   * endpoint): soft-deleted by the engine. For entities with `deletes: "api"`.
   */
  readonly deleted?: ReadonlyArray<string> | undefined;
}

/** An id as `readIds` may list it: with the record's remote modification time (see `readIds`). */
export interface ListedId {
  readonly id: string;
  /** The record's remote modification time, as the entity's `updatedAt(record)` would give it. */
  readonly updatedAt: Date;
}

export interface ReadOptions {
  /** Lower bound on `updatedAt` for a delta read; undefined means a full read. */
  readonly since?: Date | undefined;
  /** Resume point of an interrupted read (the last checkpointed page's cursor). */
  readonly cursor?: string | undefined;
}

/** Either authoring style: async generators and promises, or Effect streams and effects. */
export type PageSource<A> = AsyncIterable<A> | Stream.Stream<A, ConnectorError>;
export type MaybeEffect<A> = Promise<A> | Effect.Effect<A, ConnectorError>;

export type DeletionSource = "webhook" | "reconcile" | "api";

/** Options of one write. */
export interface WriteOptions {
  /**
   * The vendor's version of the record the change was made against: the entity's `version` of the
   * record's `base`. With it, an entity whose `write.conditional` is true writes only if the
   * record is still at that version, and fails with `Conflict({ reason: "version" })` otherwise.
   * Undefined: an unconditional write.
   */
  readonly ifVersion?: string | undefined;
}

/** One record to create in a batch. */
export interface CreateInput<Rec> {
  /** The normalized fields to create the record with (no id: the vendor assigns it). */
  readonly record: Partial<Rec>;
}

/** One record to update in a batch. */
export interface UpdateInput<Rec> {
  /** The vendor's id of the record (its external id). */
  readonly id: string;
  /** The normalized fields to change; fields left out are not sent. */
  readonly changes: Partial<Rec>;
  /** See `WriteOptions.ifVersion`. */
  readonly ifVersion?: string | undefined;
}

/** One record to delete in a batch. */
export interface DeleteInput {
  readonly id: string;
  /** See `WriteOptions.ifVersion`. */
  readonly ifVersion?: string | undefined;
}

/** One input the vendor accepted. */
export interface WriteSucceeded<Rec> {
  readonly ok: true;
  /** The vendor's id of the record: for a create, the id it assigned. */
  readonly externalId: string;
  /**
   * The whole record as the vendor has it after the write: in the entity's Type (`Rec`, what `get`
   * returns), or in its encoded form, as reads yield records (`EncodedRecord`). The engine decodes
   * either with the entity's schema; the encoded form in one pass, which is cheaper for the
   * hundreds of answers of a batch (a record that does not decode fails its input as unreadable).
   * Undefined for deletes, and where the connector could not learn it: the engine then reads it
   * with `get` or waits for the next pull.
   */
  readonly record?: Rec | EncodedRecord | undefined;
}

/** A record in its encoded (JSON) form, as reads yield it and `records.data` stores it. */
export type EncodedRecord = { readonly [field: string]: unknown };

/** One input the vendor refused, or that was not written. */
export interface WriteFailed {
  readonly ok: false;
  /**
   * Why, as an error reason with the vendor's message: `InvalidRecord` (a refused value),
   * `NotFound` (the record is gone), `Conflict` (`reason: "version"` when the record moved since
   * `ifVersion`, `"duplicate"` when a unique value is taken), or a transient one (`RateLimited`,
   * `Unavailable`, `AuthExpired`) for an input that was not sent because its request failed. The
   * engine's retry policy decides by the tag, as for any connector error.
   */
  readonly error: ConnectorError;
}

/** What became of one input of a batch write. */
export type WriteResult<Rec> = WriteSucceeded<Rec> | WriteFailed;

/**
 * Batched writes: many inputs a call, one result per input, in the inputs' order
 * (`results[i]` answers `inputs[i]`). A call may pass any number of inputs: the connector sends
 * them in requests of at most the vendor's maximum.
 *
 * Per-input outcomes are results, never a failure of the call: one refused input fails alone and
 * the others are written. A call fails (throws, or an Effect failure) only when nothing was
 * written; once part of a call is written, a request that fails later (429, 5xx) fails its
 * inputs and the inputs not yet sent, as results with that error. Where a vendor refuses a whole
 * request for one bad input, the connector splits the request and sends the rest again
 * (`splitOnRefusal` helps), so the bad input is the only failure.
 *
 * @example
 * batch: {
 *   maxPerRequest: 100,
 *   update: (ctx, inputs) => writeInChunks(inputs, 100, (chunk) => updateChunk(ctx, chunk)),
 * }
 */
export interface EntityBatchWrite<Rec, Config> {
  /**
   * The most inputs the vendor takes in one request (HubSpot 100, Salesforce 200, Business
   * Central 100): how many changes are worth gathering for one call.
   */
  readonly maxPerRequest: number;
  readonly create?: (
    ctx: ConnectorContext<Config>,
    inputs: ReadonlyArray<CreateInput<Rec>>,
  ) => MaybeEffect<ReadonlyArray<WriteResult<Rec>>>;
  readonly update?: (
    ctx: ConnectorContext<Config>,
    inputs: ReadonlyArray<UpdateInput<Rec>>,
  ) => MaybeEffect<ReadonlyArray<WriteResult<Rec>>>;
  /** Successes carry no record. Deleting a record that is already gone succeeds. */
  readonly delete?: (
    ctx: ConnectorContext<Config>,
    inputs: ReadonlyArray<DeleteInput>,
  ) => MaybeEffect<ReadonlyArray<WriteResult<Rec>>>;
}

export interface EntityWrite<Rec, Config> {
  /** Creates one record; returns it as the vendor has it (with the id it assigned). */
  readonly create?: (ctx: ConnectorContext<Config>, record: Partial<Rec>) => MaybeEffect<Rec>;
  /** Changes one record; returns the whole record as the vendor now has it. */
  readonly update?: (
    ctx: ConnectorContext<Config>,
    id: string,
    changes: Partial<Rec>,
    options?: WriteOptions,
  ) => MaybeEffect<Rec>;
  /** Deletes one record; deleting a record that is already gone succeeds. */
  readonly delete?: (ctx: ConnectorContext<Config>, id: string, options?: WriteOptions) => MaybeEffect<void>;
  /**
   * True when updates and deletes honour `ifVersion`: with the vendor's own conditional write
   * (Business Central's `If-Match`, Salesforce's `If-Unmodified-Since`), or by reading the current
   * versions and comparing just before writing where the vendor has none (one round trip of race).
   * Default false: `ifVersion` is ignored, and the engine must compare versions itself.
   */
  readonly conditional?: boolean;
  /** Batched creates, updates and deletes, where the vendor has batch endpoints (see EntityBatchWrite). */
  readonly batch?: EntityBatchWrite<Rec, Config>;
}

export interface EntityDefinition<Rec, Config> {
  /** Schema of the normalized record. Every record read is decoded with it. */
  readonly record: Schema.Schema<Rec, any, never>;
  readonly primaryKey: (record: Rec) => string;
  /** Remote modification time: drives the delta cursor and conflict ordering. */
  readonly updatedAt: (record: Rec) => Date;
  /**
   * The vendor's version of a record, which conditional writes send back as `ifVersion`: Business
   * Central's `@odata.etag`, Salesforce's `LastModifiedDate`. Default: `updatedAt` as ISO-8601.
   *
   * @example
   * version: (item) => item.etag
   */
  readonly version?: (record: Rec) => string;
  readonly read: (ctx: ConnectorContext<Config>, options: ReadOptions) => PageSource<ReadPage>;
  /**
   * Every live id, a page at a time, for reconciliation (never whole records). Where the vendor
   * lists each id's modification time as cheaply (one more field in the same listing), yield
   * `{ id, updatedAt }` entries instead of bare ids: reconciliation then also re-fetches the
   * records that are newer remotely than the stored copy (an update every delta missed).
   * `updatedAt` must be the same instant the entity's `updatedAt(record)` gives for that record,
   * or the record is re-fetched at every reconciliation. Bare ids and entries may be mixed.
   *
   * @example
   * readIds: async function* (ctx) {
   *   for await (const page of listPages(ctx, { fields: ["id", "modifiedAt"] }))
   *     yield page.map((row) => ({ id: row.id, updatedAt: new Date(row.modifiedAt) }));
   * }
   */
  readonly readIds?: (ctx: ConnectorContext<Config>) => PageSource<ReadonlyArray<string | ListedId>>;
  /** One record by id, or null when it no longer exists (webhook-triggered sync). */
  readonly get?: (ctx: ConnectorContext<Config>, id: string) => MaybeEffect<Rec | null>;
  /**
   * Several records by id in as few requests as the vendor allows (a batch read), for
   * reconciliation's re-fetches. Answers the records found, as a read page carries them (each is
   * decoded by the engine, so one malformed record is an item error, not a failed batch); ids
   * that no longer exist are left out. The engine passes up to a batch of ids (500 by default):
   * split them to the vendor's limit here. Without it, reconciliation calls `get` once per id
   * (a few at a time).
   */
  readonly getMany?: (ctx: ConnectorContext<Config>, ids: ReadonlyArray<string>) => MaybeEffect<ReadonlyArray<unknown>>;
  readonly write?: EntityWrite<Rec, Config>;
  /**
   * How deletions are learned. Default: "reconcile".
   * "api": read pages list them in `deleted`; "webhook": delete events; "reconcile": id comparison.
   */
  readonly deletes?: DeletionSource;
  /** The vendor sends webhooks for this entity. Default: false. */
  readonly webhooks?: boolean;
  /** Fields whose local changes are pushed at once (hybrid); others wait for the batch. */
  readonly criticalFields?: ReadonlyArray<string>;
  /**
   * The fields a local change may set: those `write` sends to the vendor. A local change to any
   * other field of `record` (an id, a timestamp, a flag the vendor sets) is refused when it is
   * submitted, naming the field, as is a field `record` does not have. Default: every field of
   * `record`.
   * @example writableFields: ["email", "firstName", "lastName"]
   */
  readonly writableFields?: ReadonlyArray<string>;
  /**
   * How long a local change that touches no critical field may wait to be pushed together with
   * others (one batch per connection x entity x operation). Default: the engine's push interval
   * (1 s).
   */
  readonly pushIntervalMs?: number;
  /**
   * How a pull settles remote edits that overlap unpushed local edits of the same fields
   * (non-overlapping edits always merge). Default: `{ kind: "manual" }`, a conflict row that
   * waits for `conflicts.resolve`.
   */
  readonly conflictPolicy?: ConflictPolicy;
}

/** An inbound webhook event, as the connector's `parse` normalizes it. */
export interface WebhookEvent {
  readonly eventId: string;
  readonly entity: string;
  readonly externalId: string;
  readonly kind: "created" | "updated" | "deleted" | "merged" | "restored";
  readonly occurredAt: Date;
}

export interface InboundWebhookRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Headers;
  readonly rawBody: string;
}

export interface ConnectorWebhooks<Config> {
  /** True when the signature is valid (constant-time comparison is the connector's duty). */
  readonly verify: (ctx: { readonly config: Config; readonly now: Date }, request: InboundWebhookRequest) => boolean;
  readonly parse: (request: InboundWebhookRequest) => ReadonlyArray<WebhookEvent>;
  /** Answers a subscription handshake (GET challenge) where the vendor needs one. */
  readonly handshake?: (request: InboundWebhookRequest) => { readonly status: number; readonly body: string } | null;
  /**
   * The answer the vendor expects once a delivery's events are stored, where it is not any 2xx:
   * Salesforce's Outbound Messages, for instance, are redelivered until the answer is a SOAP
   * `<Ack>true</Ack>`. Default: 200 with the receipt as JSON. Refusals (bad signature,
   * malformed body) are answered by the engine, whatever this returns.
   */
  readonly acknowledge?: (receipt: WebhookReceipt) => WebhookAnswer;
}

/** What became of one inbound delivery's events. */
export interface WebhookReceipt {
  /** Events stored and queued now. */
  readonly accepted: number;
  /** Events seen before (same event id on this connection): stored once, never re-queued. */
  readonly duplicates: number;
  /** Events about entities this connector does not sync. */
  readonly ignored: number;
}

/** An HTTP answer a connector gives its vendor (a handshake or an acknowledgement). */
export interface WebhookAnswer {
  /** A 2xx for an acknowledgement: the events are stored. */
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

/** What a vendor's rate-limit response headers say, as a connector's `rateLimit.fromHeaders` reads them. */
export interface RateLimitHint {
  /** Requests left in the current window. 0 makes the connection wait for the reset. */
  readonly remaining?: number | undefined;
  /** Milliseconds until the window resets (used with `remaining: 0`). */
  readonly resetAfterMs?: number | undefined;
  /** Requests allowed per window, with `windowMs`: replaces the configured rate. */
  readonly limit?: number | undefined;
  readonly windowMs?: number | undefined;
}

/**
 * A connection's request budget: a token bucket shared by every job of one
 * connection (all `ctx.http` calls draw from it).
 *
 * @example
 * rateLimit: {
 *   requestsPerSecond: 10,          // HubSpot private apps: 100 per 10 s
 *   fromHeaders: (h) => ({
 *     remaining: Number(h.get("x-hubspot-ratelimit-remaining") ?? NaN),
 *     resetAfterMs: Number(h.get("x-hubspot-ratelimit-interval-milliseconds") ?? NaN),
 *   }),
 * }
 */
export interface RateLimitPolicy {
  /** Sustained rate. */
  readonly requestsPerSecond: number;
  /** Bucket size: requests allowed in a burst. Default: `requestsPerSecond` (at least 1). */
  readonly burst?: number;
  /** Reads the vendor's rate-limit headers after every response; non-finite numbers are ignored. */
  readonly fromHeaders?: (headers: Headers) => RateLimitHint | undefined;
}

export interface ConnectorDefinition<
  Config,
  ConfigEncoded,
  Entities extends Record<string, EntityDefinition<any, Config>>,
> {
  /** Unique name; used in URLs (`/webhooks/:connector/...`) and in connection config. */
  readonly name: string;
  readonly version: string;
  /** Schema of a connection's config. Mark secrets with `Schema.Redacted(...)`: they are never returned. */
  readonly config: Schema.Schema<Config, ConfigEncoded, never>;
  /**
   * How to obtain an access token; the engine then authenticates every `ctx.http` request with
   * it (see `AccessGrant`). Default: none (credentials travel in the config, used as they are).
   *
   * @example
   * auth: async ({ config, refreshState, http }) => {
   *   const refreshToken = refreshState ?? config.refreshToken;
   *   const { body } = await http.request({ method: "POST", url: `${config.baseUrl}/oauth/token`,
   *     body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: Redacted.value(refreshToken) }) });
   *   return { accessToken: Redacted.make(body.access_token), expiresInMs: body.expires_in * 1000,
   *     refreshState: body.refresh_token ? Redacted.make(body.refresh_token) : undefined };
   * }
   */
  readonly auth?: ConnectorAuth<Config>;
  /** Optional credential check, used by `connections.test`. */
  readonly check?: (ctx: ConnectorContext<Config>) => MaybeEffect<void>;
  readonly entities: Entities;
  readonly webhooks?: ConnectorWebhooks<Config>;
  /**
   * Request budget per connection. Default: unlimited (only 429 + Retry-After slow it down).
   * A function of the decoded config lets a connection override the vendor's default budget
   * (e.g. a raised quota, or a local fake); returning undefined means unlimited.
   */
  readonly rateLimit?: RateLimitPolicy | ((config: Config) => RateLimitPolicy | undefined);
}

/** The budget a connection of `connector` draws from: the connector's policy, applied to the connection's config. */
export const rateLimitPolicyOf = <Config>(
  connector: { readonly rateLimit?: ConnectorDefinition<Config, any, any>["rateLimit"] },
  config: Config,
): RateLimitPolicy | undefined =>
  typeof connector.rateLimit === "function" ? connector.rateLimit(config) : connector.rateLimit;

/** A connector with its types erased, as the registry holds it. */
export type AnyConnector = ConnectorDefinition<any, any, Record<string, EntityDefinition<any, any>>>;

/**
 * Declares a connector. An identity function: its value is in the types, which
 * tie every entity's context to the connector's config schema.
 *
 * @example
 * export default defineConnector({
 *   name: "acme-crm", version: "1.0.0",
 *   config: Schema.Struct({ baseUrl: Schema.String, token: Schema.Redacted(Schema.String) }),
 *   entities: { contacts: defineEntity({ record: Contact, primaryKey: (r) => r.id, ... }) },
 * })
 */
export const defineConnector = <Config, ConfigEncoded, Entities extends Record<string, EntityDefinition<any, Config>>>(
  definition: ConnectorDefinition<Config, ConfigEncoded, Entities>,
): ConnectorDefinition<Config, ConfigEncoded, Entities> => definition;

/** Declares one entity of a connector (see EntityDefinition for each member). */
export const defineEntity = <Rec, Config = any>(
  definition: EntityDefinition<Rec, Config>,
): EntityDefinition<Rec, Config> => definition;
