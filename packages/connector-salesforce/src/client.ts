import {
  AuthExpired,
  Conflict,
  type ConnectorContext,
  type ConnectorError,
  InvalidRecord,
  type ListedId,
  NotFound,
  RateLimited,
  type ReadOptions,
  type ReadPage,
  shapeMismatch,
  Unavailable,
  vendorCode,
  vendorMessage,
} from "@tandem/connector-sdk";
import { Schema } from "effect";
import { sessionInstanceUrl } from "./auth.ts";
import type { SalesforceConfig } from "./config.ts";
import {
  CollectionRowsWire,
  CreateResultWire,
  checkSObjectRow,
  ErrorsWire,
  parseSalesforceDateTime,
  parseSforceLimitInfo,
  QueryPageWire,
  type SObjectRow,
} from "./wire.ts";

/** The context every Salesforce function receives. */
export type SalesforceContext = ConnectorContext<SalesforceConfig>;

/** What the shared read/write code needs to know about one sObject. */
export interface SObjectSpec<Rec, Encoded> {
  /** The sObject's API name: `Contact`, `Account`. */
  readonly sobject: string;
  /** Fields to select besides Id, IsDeleted and SystemModstamp. */
  readonly fields: ReadonlyArray<string>;
  /** Normalized record schema. */
  readonly record: Schema.Schema<Rec, Encoded, never>;
  /** Wire row -> encoded normalized record (the engine decodes it with `record`). */
  readonly toRecord: (row: SObjectRow) => Encoded;
}

export interface SalesforceResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
}

/**
 * A 403 REQUEST_LIMIT_EXCEEDED for the org's API request limit ("TotalRequests Limit exceeded.")
 * is retried after an hour. The limit is counted over a rolling 24 hours, so capacity comes back
 * as the calls of a day ago age out; no header says when. Retrying sooner would only spend the
 * calls other integrations of the org are waiting for.
 * See https://developer.salesforce.com/docs/atlas.en-us.salesforce_app_limits_cheatsheet.meta/salesforce_app_limits_cheatsheet/salesforce_app_limits_platform_api.htm
 */
export const requestLimitRetryAfterMs = 60 * 60 * 1000;

/** The same error code for too many concurrent long-running requests: those free up in seconds. */
export const concurrentLimitRetryAfterMs = 30_000;

/** Usage deciles already warned about, per instance (each decile from 90% once, not every call). */
const warnedUsage = new Map<string, number>();

const noteLimitInfo = (ctx: SalesforceContext, instanceUrl: string, headers: Headers) => {
  const usage = parseSforceLimitInfo(headers.get("sforce-limit-info"));
  if (usage === undefined || usage.limit <= 0) return;
  const share = usage.used / usage.limit;
  const decile = Math.floor(share * 10);
  if (share < 0.9) {
    warnedUsage.delete(instanceUrl);
    return;
  }
  if ((warnedUsage.get(instanceUrl) ?? -1) >= decile) return;
  warnedUsage.set(instanceUrl, decile);
  ctx.log.warn("salesforce: the org's daily API request limit is nearly spent", {
    used: usage.used,
    limit: usage.limit,
  });
};

/**
 * One authenticated call to `path` (from `/services/...`) on the session's instance.
 * `ctx.http` sends the session's token (see `salesforceAuth`), refreshes it once on a 401
 * (Salesforce's `INVALID_SESSION_ID`: session timed out or revoked), and maps 401/429/5xx/timeouts
 * to error reasons.
 */
export const salesforceRequest = async (
  ctx: SalesforceContext,
  input: {
    readonly method?: string;
    readonly path: string;
    readonly query?: Record<string, string | number | boolean | undefined>;
    readonly body?: unknown;
    readonly headers?: Record<string, string>;
  },
): Promise<SalesforceResponse> => {
  const instanceUrl = (await sessionInstanceUrl(ctx)) ?? ctx.config.instanceUrl;
  const response = await ctx.http.request({
    method: input.method ?? "GET",
    url: `${instanceUrl}${input.path}`,
    query: input.query,
    body: input.body,
    headers: input.headers,
  });
  noteLimitInfo(ctx, instanceUrl, response.headers);
  return response;
};

export const dataPath = (ctx: SalesforceContext, rest: string) => `/services/data/${ctx.config.apiVersion}${rest}`;

const errorsOf = (body: unknown): ErrorsWire => {
  const decoded = Schema.decodeUnknownEither(ErrorsWire)(body);
  return decoded._tag === "Right" ? decoded.right : [];
};

/** The first match of a DUPLICATES_DETECTED error: the record that already holds the values. */
const duplicateIdOf = (duplicateResult: unknown): string | undefined => {
  const matches = (duplicateResult as { matchResults?: Array<{ matchRecords?: Array<{ record?: { Id?: unknown } }> }> })
    ?.matchResults;
  const id = matches?.[0]?.matchRecords?.[0]?.record?.Id;
  return typeof id === "string" ? id : undefined;
};

/**
 * Maps a status `ctx.http` left to us to a connector error, from Salesforce's error array:
 * 403 REQUEST_LIMIT_EXCEEDED -> RateLimited (daily limit: an hour; concurrency: 30 s); other
 * 403s (API disabled, missing permissions) -> AuthExpired; 400 DUPLICATES_DETECTED -> Conflict
 * with the matching record; other 400s (REQUIRED_FIELD_MISSING, INVALID_FIELD, MALFORMED_QUERY,
 * INVALID_EMAIL_ADDRESS...) -> InvalidRecord; 404 (NOT_FOUND, ENTITY_IS_DELETED) -> NotFound;
 * 409 -> Conflict; 412 (a failed If-Unmodified-Since) -> a version Conflict; anything else -> Unavailable.
 * See https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm
 */
export const failureOf = (response: SalesforceResponse, externalId?: string): ConnectorError => {
  const [first] = errorsOf(response.body);
  const code = vendorCode(first?.errorCode) ?? "UNKNOWN";
  const detail = first?.message ?? "";
  // Salesforce's own message only where the tenant must fix the record; never a body of another shape.
  const quoted = [400, 409, 412].includes(response.status) ? vendorMessage(detail) : undefined;
  const fieldNames = (first?.fields ?? []).flatMap((f) => vendorCode(f) ?? []);
  const fields = fieldNames.length > 0 ? ` (fields: ${fieldNames.join(", ")})` : "";
  const message = `Salesforce ${response.status} ${code}${quoted ? `: ${quoted}` : ""}${fields}`;
  switch (response.status) {
    case 400:
      return code === "DUPLICATES_DETECTED"
        ? new Conflict({
            message,
            externalId: duplicateIdOf(first?.duplicateResult) ?? externalId,
            reason: "duplicate",
          })
        : new InvalidRecord({ message, externalId });
    case 403: {
      if (code !== "REQUEST_LIMIT_EXCEEDED") return new AuthExpired({ message });
      const usage = parseSforceLimitInfo(response.headers.get("sforce-limit-info"));
      const concurrent = /concurrent/i.test(detail);
      // Which limit, in our words: the vendor's message told us, but is not quoted.
      const limit = concurrent ? "concurrent request limit" : "daily request limit";
      return new RateLimited({
        retryAfterMs: concurrent ? concurrentLimitRetryAfterMs : requestLimitRetryAfterMs,
        message: `${message}: ${limit}${usage !== undefined ? ` (api-usage ${usage.used}/${usage.limit})` : ""}`,
      });
    }
    case 404:
      return new NotFound({ message, externalId });
    case 409:
      return new Conflict({ message, externalId });
    case 412:
      // A conditional write's precondition (If-Unmodified-Since): the record changed since.
      return new Conflict({ message, externalId, reason: "version" });
    default:
      return new Unavailable({ message, status: response.status });
  }
};

/** Decodes a response envelope; a shape we do not recognize is Salesforce misbehaving (transient). */
export const decodeEnvelope = <A, I>(
  schema: Schema.Schema<A, I, never>,
  response: SalesforceResponse,
  where: string,
): A => {
  const decoded = Schema.decodeUnknownEither(schema)(response.body);
  if (decoded._tag === "Left") {
    throw new Unavailable({
      message: `${where}: ${shapeMismatch(decoded.left)}`,
      status: response.status,
    });
  }
  return decoded.right;
};

/* ------------------------------------------------------------------------------------------------
 * SOQL.
 * --------------------------------------------------------------------------------------------- */

/**
 * A SOQL datetime literal: unquoted, UTC, whole seconds (`2024-01-15T00:00:00Z`). Rounded down,
 * so a bound never skips the records of its own second.
 * See https://developer.salesforce.com/docs/platform/salesforce-soql-sosl/guide/sforce-api-calls-soql-select-dateformats.html
 */
export const soqlDateTime = (at: Date | number): string =>
  `${new Date(Math.floor(new Date(at).getTime() / 1000) * 1000).toISOString().slice(0, 19)}Z`;

/**
 * The replication query: every field, ordered by SystemModstamp then Id (a stable order for
 * paging), from `bound` on when given.
 *
 * SystemModstamp, not LastModifiedDate: LastModifiedDate moves only on user edits, while
 * SystemModstamp also moves on system changes (rollup and formula recalculation, automation,
 * deletion and undeletion), and it is indexed. Salesforce recommends it for replication.
 * See https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/system_fields.htm
 *
 * The bound is `>=`: the engine asks for every record with `updatedAt >= since`, and the literal
 * has whole seconds, so a `>` would drop the records of `since`'s second. Rows before `since`
 * within that second are dropped after reading (see readSObjects).
 */
export const replicationSoql = <Rec, Encoded>(spec: SObjectSpec<Rec, Encoded>, bound?: number): string =>
  `SELECT ${["Id", ...spec.fields, "IsDeleted", "SystemModstamp"].join(", ")} FROM ${spec.sobject}` +
  (bound === undefined ? "" : ` WHERE SystemModstamp >= ${soqlDateTime(bound)}`) +
  " ORDER BY SystemModstamp, Id";

const queryOptions = (ctx: SalesforceContext) => ({ "sforce-query-options": `batchSize=${ctx.config.pageSize}` });

/**
 * `GET /services/data/vNN.0/query?q=` (or `queryAll`, which includes the recycle bin: rows
 * deleted in the last 15 days, with `IsDeleted = true`).
 * Quirks: up to 2,000 rows a page (`Sforce-Query-Options: batchSize=N` asks for 200 to 2,000);
 * the next page is a GET of `nextRecordsUrl`, a query locator that expires after 15 minutes unused.
 * See https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_queryall.htm
 */
const query = (ctx: SalesforceContext, soql: string, endpoint: "query" | "queryAll") =>
  salesforceRequest(ctx, { path: dataPath(ctx, `/${endpoint}`), query: { q: soql }, headers: queryOptions(ctx) });

/** The next page of a query: `nextRecordsUrl` is a path on the instance (`/services/data/v60.0/query/01g...-2000`). */
const queryMore = (ctx: SalesforceContext, nextRecordsUrl: string) => {
  if (!nextRecordsUrl.startsWith("/services/data/")) {
    throw new InvalidRecord({ message: `not a Salesforce nextRecordsUrl: ${nextRecordsUrl}` });
  }
  return salesforceRequest(ctx, { path: nextRecordsUrl, headers: queryOptions(ctx) });
};

const isExpiredLocator = (response: SalesforceResponse) =>
  response.status === 400 && errorsOf(response.body)[0]?.errorCode === "INVALID_QUERY_LOCATOR";

/* ------------------------------------------------------------------------------------------------
 * Reads. The cursor the engine checkpoints is JSON around the query's `nextRecordsUrl`.
 * --------------------------------------------------------------------------------------------- */

const ReadCursor = Schema.parseJson(
  Schema.Struct({
    /** The query's `nextRecordsUrl`: where the read resumes. */
    next: Schema.String,
    /** The delta's lower bound (epoch ms); absent on a full read. */
    since: Schema.optional(Schema.Number),
    /**
     * SystemModstamp (epoch ms) of the last row read. A resume after the locator expired
     * (15 minutes unused) queries again from there: the order is by SystemModstamp, so nothing
     * before it is missed, and the few rows of that second read twice are unchanged upserts.
     */
    last: Schema.optional(Schema.Number),
  }),
);
type ReadCursor = typeof ReadCursor.Type;

const decodeCursor = (ctx: SalesforceContext, cursor: string | undefined): ReadCursor | undefined => {
  if (cursor === undefined) return undefined;
  const decoded = Schema.decodeUnknownEither(ReadCursor)(cursor);
  if (decoded._tag === "Right") return decoded.right;
  ctx.log.warn("salesforce: ignoring an unreadable cursor; starting over", { cursor });
  return undefined;
};

/**
 * Maps raw rows to encoded normalized records. A row missing what every row has (Id, a
 * SystemModstamp string) is passed through unchanged; a row with a bad field value is mapped
 * as it is. Either way the engine's decode with the entity's schema rejects that one record
 * (as InvalidRecord) and the read goes on.
 */
const toRecords = <Rec, Encoded>(
  ctx: SalesforceContext,
  spec: SObjectSpec<Rec, Encoded>,
  rows: ReadonlyArray<unknown>,
) =>
  rows.map((raw) => {
    const checked = checkSObjectRow(raw);
    if ("ok" in checked) return spec.toRecord(checked.ok);
    ctx.log.warn(`salesforce: malformed ${spec.sobject} row`, {
      id: (raw as { Id?: unknown } | null)?.Id,
      error: checked.error,
    });
    return raw;
  });

/**
 * The entity `read`. A full read queries the live records (`/query`). A delta read (`since`)
 * queries `/queryAll` from `since` on: live rows are records, rows with `IsDeleted = true`
 * (deleted in the last 15 days: the recycle bin) are the page's `deleted` ids, so one ordered
 * pass reports changes and deletions on the same clock. Deletions older than the recycle bin,
 * or emptied from it, are reconciliation's to find (`readIds`).
 */
export async function* readSObjects<Rec, Encoded>(
  ctx: SalesforceContext,
  spec: SObjectSpec<Rec, Encoded>,
  options: ReadOptions,
): AsyncGenerator<ReadPage> {
  const resumed = decodeCursor(ctx, options.cursor);
  const since = resumed !== undefined ? resumed.since : options.since?.getTime();
  const endpoint = since === undefined ? "query" : "queryAll";
  let last = resumed?.last;
  const restart = () => {
    const bound = since === undefined ? last : Math.max(since, last ?? since);
    return query(ctx, replicationSoql(spec, bound), endpoint);
  };
  /**
   * The next page of the query. A locator that is gone (unused too long, or released for a newer
   * cursor) is not an end: the query runs again from the last row read, in the same order, so
   * the records after it, edited meanwhile or not, are all read.
   */
  const nextPage = async (next: string) => {
    const response = await queryMore(ctx, next);
    if (!isExpiredLocator(response)) return response;
    ctx.log.info(`salesforce: the ${spec.sobject} query locator expired; querying again from the last row read`);
    return restart();
  };
  let response = resumed === undefined ? await restart() : await nextPage(resumed.next);
  for (;;) {
    if (response.status !== 200) throw failureOf(response);
    const page = decodeEnvelope(QueryPageWire, response, `query ${spec.sobject}`);
    const live: Array<unknown> = [];
    const deleted: Array<string> = [];
    for (const raw of page.records) {
      const row = raw as Partial<SObjectRow> | null;
      const at = parseSalesforceDateTime(row?.SystemModstamp);
      if (at !== undefined) last = at;
      // The literal was rounded down to the second: drop what precedes the bound itself.
      if (since !== undefined && at !== undefined && at < since) continue;
      if (row?.IsDeleted === true && typeof row.Id === "string") deleted.push(row.Id);
      else live.push(raw);
    }
    const next = page.nextRecordsUrl;
    yield {
      records: toRecords(ctx, spec, live),
      ...(deleted.length > 0 ? { deleted } : {}),
      cursor: next === undefined ? undefined : Schema.encodeSync(ReadCursor)({ next, since, last }),
    };
    if (next === undefined) return;
    // A cancelled read must fail, never end early: an early end looks like "no more records".
    ctx.signal.throwIfAborted();
    response = await nextPage(next);
  }
}

/**
 * The entity `readIds`: live ids with their SystemModstamp (`SELECT Id, SystemModstamp FROM X`,
 * the field the record's `updatedAt` is), a page at a time, for reconciliation: one more field
 * in the same query lets it re-fetch what a delta missed. A row without a readable stamp is
 * listed as a bare id (compared by id only).
 */
export async function* readSObjectIds<Rec, Encoded>(
  ctx: SalesforceContext,
  spec: SObjectSpec<Rec, Encoded>,
): AsyncGenerator<ReadonlyArray<string | ListedId>> {
  let response = await query(ctx, `SELECT Id, SystemModstamp FROM ${spec.sobject}`, "query");
  for (;;) {
    if (response.status !== 200) throw failureOf(response);
    const page = decodeEnvelope(QueryPageWire, response, `query ${spec.sobject} ids`);
    const listed: Array<string | ListedId> = [];
    for (const raw of page.records) {
      const row = raw as { Id?: unknown; SystemModstamp?: unknown } | null;
      if (typeof row?.Id !== "string") continue;
      const at = parseSalesforceDateTime(row.SystemModstamp);
      listed.push(at === undefined ? row.Id : { id: row.Id, updatedAt: new Date(at) });
    }
    yield listed;
    if (page.nextRecordsUrl === undefined) return;
    ctx.signal.throwIfAborted();
    response = await queryMore(ctx, page.nextRecordsUrl);
  }
}

/**
 * Ids per SObject Collections retrieve: the GET carries them in its URL, and 200 ids (18
 * characters each) keep it near 4 KB, well inside what proxies and Salesforce accept.
 */
export const retrieveMaxIds = 200;

/**
 * The entity `getMany`: `GET /composite/sobjects/{Object}?ids=&fields=`, `retrieveMaxIds` ids a
 * request. The answer is an array in the order of `ids`, with null for an id that does not exist
 * or is in the recycle bin; those are left out. Rows are mapped, not decoded: the engine decodes
 * each, so one malformed row is reported alone.
 * See https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_retrieve.htm
 */
export const getSObjects = async <Rec, Encoded>(
  ctx: SalesforceContext,
  spec: SObjectSpec<Rec, Encoded>,
  ids: ReadonlyArray<string>,
): Promise<ReadonlyArray<unknown>> => {
  const found: Array<unknown> = [];
  for (let start = 0; start < ids.length; start += retrieveMaxIds) {
    ctx.signal.throwIfAborted();
    const response = await salesforceRequest(ctx, {
      path: dataPath(ctx, `/composite/sobjects/${spec.sobject}`),
      query: {
        ids: ids.slice(start, start + retrieveMaxIds).join(","),
        fields: ["Id", ...spec.fields, "IsDeleted", "SystemModstamp"].join(","),
      },
    });
    if (response.status !== 200) throw failureOf(response);
    const rows = decodeEnvelope(CollectionRowsWire, response, `retrieve ${spec.sobject}`);
    // A row in the recycle bin is not a live record to store (reconciliation deletes it if it is gone).
    const live = rows.filter((row) => row !== null && (row as { IsDeleted?: unknown }).IsDeleted !== true);
    found.push(...toRecords(ctx, spec, live));
  }
  return found;
};

/** A full row, decoded (for `get` and writes); malformed -> InvalidRecord. */
export const decodeRecord = <Rec, Encoded>(spec: SObjectSpec<Rec, Encoded>, raw: unknown, externalId: string): Rec => {
  const checked = checkSObjectRow(raw);
  if ("error" in checked)
    throw new InvalidRecord({ message: `malformed ${spec.sobject}: ${checked.error}`, externalId });
  const record = Schema.decodeUnknownEither(spec.record)(spec.toRecord(checked.ok));
  if (record._tag === "Left") throw new InvalidRecord({ message: record.left.message, externalId });
  return record.right;
};

const recordPath = (ctx: SalesforceContext, sobject: string, id: string) =>
  dataPath(ctx, `/sobjects/${sobject}/${encodeURIComponent(id)}`);

/**
 * `GET /sobjects/{Object}/{id}?fields=...`: null on 404, whether the record never existed
 * (NOT_FOUND) or is in the recycle bin (ENTITY_IS_DELETED).
 */
export const getSObject = async <Rec, Encoded>(
  ctx: SalesforceContext,
  spec: SObjectSpec<Rec, Encoded>,
  id: string,
): Promise<Rec | null> => {
  const response = await salesforceRequest(ctx, {
    path: recordPath(ctx, spec.sobject, id),
    query: { fields: [...spec.fields, "IsDeleted", "SystemModstamp"].join(",") },
  });
  if (response.status === 404) return null;
  if (response.status !== 200) throw failureOf(response, id);
  return decodeRecord(spec, response.body, id);
};

/* ------------------------------------------------------------------------------------------------
 * Writes. Salesforce answers writes without the record, so each is followed by a GET: callers
 * expect the whole record as Salesforce now has it.
 * See https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/using_resources_working_with_records.htm
 * --------------------------------------------------------------------------------------------- */

const refetch = async <Rec, Encoded>(
  ctx: SalesforceContext,
  spec: SObjectSpec<Rec, Encoded>,
  id: string,
  what: string,
) => {
  const current = await getSObject(ctx, spec, id);
  if (current === null) throw new NotFound({ message: `${spec.sobject} ${id} vanished after ${what}`, externalId: id });
  return current;
};

/** `POST /sobjects/{Object}` -> 201 `{ id, success, errors: [] }`. */
export const createSObject = async <Rec, Encoded>(
  ctx: SalesforceContext,
  spec: SObjectSpec<Rec, Encoded>,
  fields: Record<string, string | null>,
): Promise<Rec> => {
  const response = await salesforceRequest(ctx, {
    method: "POST",
    path: dataPath(ctx, `/sobjects/${spec.sobject}`),
    body: fields,
  });
  if (response.status !== 201) throw failureOf(response);
  const created = decodeEnvelope(CreateResultWire, response, `create ${spec.sobject}`);
  return refetch(ctx, spec, created.id, "its creation");
};

/**
 * An `ifVersion` (LastModifiedDate, ISO-8601) as `If-Unmodified-Since`: an HTTP date, whole
 * seconds. Salesforce then writes only if LastModifiedDate is not later, and answers 412 otherwise.
 * Weak validation: an edit in the same second as the version goes unseen.
 * See https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_rest_conditional_requests.htm
 */
export const ifUnmodifiedSince = (ifVersion: string, externalId?: string): string => {
  const at = Date.parse(ifVersion);
  if (Number.isNaN(at)) {
    throw new InvalidRecord({ message: `ifVersion is not a LastModifiedDate: ${ifVersion}`, externalId });
  }
  return new Date(at).toUTCString();
};

/**
 * `PATCH /sobjects/{Object}/{id}` -> 204; a deleted record answers 404 ENTITY_IS_DELETED (NotFound).
 * With `ifVersion`, conditional (`If-Unmodified-Since`): a record changed since is a version Conflict.
 */
export const updateSObject = async <Rec, Encoded>(
  ctx: SalesforceContext,
  spec: SObjectSpec<Rec, Encoded>,
  id: string,
  fields: Record<string, string | null>,
  ifVersion?: string,
): Promise<Rec> => {
  const response = await salesforceRequest(ctx, {
    method: "PATCH",
    path: recordPath(ctx, spec.sobject, id),
    body: fields,
    ...(ifVersion === undefined ? {} : { headers: { "if-unmodified-since": ifUnmodifiedSince(ifVersion, id) } }),
  });
  if (response.status !== 204 && response.status !== 200) throw failureOf(response, id);
  return refetch(ctx, spec, id, "an update");
};

/**
 * `DELETE /sobjects/{Object}/{id}` -> 204: to the recycle bin (restorable for 15 days). A record
 * already deleted (404 ENTITY_IS_DELETED) counts as done, so a retried delete is idempotent.
 */
export const deleteSObject = async <Rec, Encoded>(
  ctx: SalesforceContext,
  spec: SObjectSpec<Rec, Encoded>,
  id: string,
): Promise<void> => {
  const response = await salesforceRequest(ctx, { method: "DELETE", path: recordPath(ctx, spec.sobject, id) });
  if (response.status === 204 || response.status === 200) return;
  if (response.status === 404 && errorsOf(response.body)[0]?.errorCode === "ENTITY_IS_DELETED") return;
  throw failureOf(response, id);
};
