import {
  AuthExpired,
  Conflict,
  type ConnectorContext,
  type ConnectorError,
  InvalidRecord,
  type ListedId,
  NotFound,
  type ReadOptions,
  type ReadPage,
  shapeMismatch,
  Unavailable,
  vendorCode,
  vendorMessage,
} from "@tandem/connector-sdk";
import { Schema } from "effect";
import type { HubSpotConfig } from "./config.ts";
import { afterSearchPage, modifiedAt, SearchPosition, searchRequestBody, startOfSearch } from "./deltaSearch.ts";
import { BatchWire, CrmObjectWire, checkCrmObjectWire, ErrorWire, PageWire } from "./wire.ts";

/** The context every HubSpot function receives. */
export type HubSpotContext = ConnectorContext<HubSpotConfig>;

/** A CRM object type as it appears in `/crm/v3/objects/{objectType}`. */
export type CrmObjectType = "contacts" | "companies";

/** What the shared read/write code needs to know about one entity. */
export interface CrmObjectSpec<Rec, Encoded> {
  readonly objectType: CrmObjectType;
  /** The search property holding the modification time: `lastmodifieddate` (contacts), `hs_lastmodifieddate` (companies). */
  readonly lastModifiedProperty: string;
  /** Properties to request on reads. */
  readonly properties: ReadonlyArray<string>;
  /** Normalized record schema. */
  readonly record: Schema.Schema<Rec, Encoded, never>;
  /** Wire object -> encoded normalized record (the engine decodes it with `record`). */
  readonly toRecord: (wire: CrmObjectWire) => Encoded;
  /**
   * A property HubSpot keeps unique, whose taken value answers 409 "... already exists. Existing
   * ID: N" (contacts: `email`). Batch creates use it to tell which input a 409 is about.
   */
  readonly uniqueProperty?: string;
}

interface HubSpotResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
}

/**
 * One authenticated call. `ctx.http` sends the connection's access token (see `hubSpotAuth`),
 * refreshes it once on a 401, and maps 401/429/5xx/timeouts to error reasons.
 */
export const hubSpotRequest = (
  ctx: HubSpotContext,
  input: {
    readonly method?: string;
    readonly path: string;
    readonly query?: Record<string, string | number | boolean | undefined>;
    readonly body?: unknown;
  },
): Promise<HubSpotResponse> =>
  ctx.http.request({
    method: input.method ?? "GET",
    url: `${ctx.config.baseUrl}${input.path}`,
    query: input.query,
    body: input.body,
  });

/** HubSpot's error shape, or nothing: a body of any other shape is never quoted (it may not be HubSpot's). */
const errorOf = (body: unknown): ErrorWire | undefined => {
  const decoded = Schema.decodeUnknownEither(ErrorWire)(body);
  return decoded._tag === "Right" ? decoded.right : undefined;
};

/** HubSpot's 409 names the record that holds the unique value: "Contact already exists. Existing ID: 123". */
export const existingIdOf = (message: string): string | undefined => /Existing ID: (\d+)/.exec(message)?.[1];

/**
 * Maps a status `ctx.http` left to us to a connector error: 400 -> InvalidRecord,
 * 403 (missing scopes) -> AuthExpired, 404 -> NotFound, 409 -> Conflict (with the existing id),
 * anything else unexpected -> Unavailable. The message names the status and HubSpot's category;
 * HubSpot's own message only for 400/409, where the tenant must fix the record (see ForeignResponse).
 */
export const failureOf = (response: HubSpotResponse, externalId?: string): ConnectorError => {
  const error = errorOf(response.body);
  const category = vendorCode(error?.category);
  const detail = response.status === 400 || response.status === 409 ? vendorMessage(error?.message) : undefined;
  const message = `HubSpot ${response.status}${category ? ` ${category}` : ""}${detail ? `: ${detail}` : ""}`;
  switch (response.status) {
    case 400:
      return new InvalidRecord({ message, externalId });
    case 403:
      return new AuthExpired({ message });
    case 404:
      return new NotFound({ message, externalId });
    case 409:
      // HubSpot's 409s are unique values taken (a contact's email); it has no versioned writes.
      return new Conflict({
        message,
        externalId: existingIdOf(error?.message ?? "") ?? externalId,
        reason: "duplicate",
      });
    default:
      return new Unavailable({ message, status: response.status });
  }
};

/** Decodes a response envelope; a shape we do not recognize is HubSpot misbehaving (transient). */
export const decodeEnvelope = <A, I>(
  schema: Schema.Schema<A, I, never>,
  response: HubSpotResponse,
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

/** Built once. (Pages of records go through `checkCrmObjectWire`, the same rules by hand.) */
const decodeCrmObjectWire = Schema.decodeUnknownEither(CrmObjectWire);

/**
 * Maps raw wire records to encoded normalized records. A record that does not match the
 * wire schema is passed through unchanged: the engine's decode with the entity's `record`
 * schema then rejects it and reports it per record, so one bad record never stops a read.
 */
const toRecords = <Rec, Encoded>(
  ctx: HubSpotContext,
  spec: CrmObjectSpec<Rec, Encoded>,
  results: ReadonlyArray<unknown>,
) =>
  results.map((raw) => {
    const checked = checkCrmObjectWire(raw);
    if (checked.error === undefined) return spec.toRecord(checked.ok);
    ctx.log.warn(`hubspot: malformed ${spec.objectType} record`, {
      id: (raw as { id?: unknown } | null)?.id,
      error: checked.error,
    });
    return raw;
  });

/** A full record, decoded (for `get` and writes); malformed -> InvalidRecord. */
export const decodeRecord = <Rec, Encoded>(
  spec: CrmObjectSpec<Rec, Encoded>,
  raw: unknown,
  externalId?: string,
): Rec => {
  const wire = decodeCrmObjectWire(raw);
  if (wire._tag === "Left")
    throw new InvalidRecord({ message: `malformed ${spec.objectType}: ${shapeMismatch(wire.left)}`, externalId });
  const record = Schema.decodeUnknownEither(spec.record)(spec.toRecord(wire.right));
  if (record._tag === "Left") throw new InvalidRecord({ message: record.left.message, externalId: wire.right.id });
  return record.right;
};

/* ------------------------------------------------------------------------------------------------
 * Reads. The cursor the engine checkpoints is JSON describing the next request.
 * --------------------------------------------------------------------------------------------- */

/**
 * Search only ever returns the first 10,000 results of a query; `after` past that answers 400.
 * The delta never pages by `after` (see `deltaSearch.ts`), so it never meets the cap.
 */
export const searchResultCap = 10_000;

const ReadCursor = Schema.parseJson(
  Schema.Union(
    /** Full read: list endpoint, resume at `after`. */
    Schema.Struct({ phase: Schema.Literal("list"), after: Schema.String }),
    /**
     * Delta read, search phase: the position in (modification time, id) order. A checkpoint of
     * the earlier offset paging (`after`, `skip`, ...) decodes as its query's bound: it resumes
     * from there, reading again what it had read (unchanged upserts), never skipping.
     */
    SearchPosition,
    /** Delta read, deletions: the archived listing, records archived at or after `since`. */
    Schema.Struct({ phase: Schema.Literal("archived"), since: Schema.Number, after: Schema.optional(Schema.String) }),
  ),
);
type ReadCursor = typeof ReadCursor.Type;

const encodeCursor = (cursor: ReadCursor | undefined) =>
  cursor === undefined ? undefined : Schema.encodeSync(ReadCursor)(cursor);

const decodeCursor = (ctx: HubSpotContext, cursor: string | undefined): ReadCursor | undefined => {
  if (cursor === undefined) return undefined;
  const decoded = Schema.decodeUnknownEither(ReadCursor)(cursor);
  if (decoded._tag === "Right") return decoded.right;
  ctx.log.warn("hubspot: ignoring an unreadable cursor; starting over", { cursor });
  return undefined;
};

/**
 * `GET /crm/v3/objects/{type}?limit&after&properties&archived` — one page.
 * Quirks: `limit` is capped at 100 (`listPageSize` in the config, default 100); `paging.next.after` is absent on the last page;
 * `archived=true` lists only archived (deleted) objects, which carry `archivedAt`.
 * See https://developers.hubspot.com/docs/api/crm/contacts (GET /crm/v3/objects/contacts)
 */
export const listPage = async <Rec, Encoded>(
  ctx: HubSpotContext,
  spec: CrmObjectSpec<Rec, Encoded>,
  options: { readonly after?: string; readonly archived: boolean; readonly properties?: ReadonlyArray<string> },
) => {
  const response = await hubSpotRequest(ctx, {
    path: `/crm/v3/objects/${spec.objectType}`,
    query: {
      limit: ctx.config.listPageSize,
      after: options.after,
      properties: (options.properties ?? spec.properties).join(","),
      archived: options.archived,
    },
  });
  if (response.status !== 200) throw failureOf(response);
  return decodeEnvelope(PageWire, response, `list ${spec.objectType}`);
};

const idOf = (raw: unknown): string | undefined => {
  const id = (raw as { id?: unknown } | null)?.id;
  return typeof id === "string" ? id : undefined;
};

/**
 * `POST /crm/v3/objects/{type}/search` — one delta page, a new query from `position` (keyset
 * paging, see `deltaSearch.ts`: an offset skips a record's neighbour when the record is edited
 * between two pages). Quirks: at most 200 a page, one sorting rule per query, 10,000 results a
 * query (never reached: no `after`). Archived objects are not searchable, and results lag writes
 * by seconds (the engine's delta overlap covers that).
 * See https://developers.hubspot.com/docs/api/crm/search
 */
const searchPage = async <Rec, Encoded>(
  ctx: HubSpotContext,
  spec: CrmObjectSpec<Rec, Encoded>,
  position: SearchPosition,
): Promise<{ readonly results: ReadonlyArray<unknown>; readonly next: SearchPosition | undefined }> => {
  const response = await hubSpotRequest(ctx, {
    method: "POST",
    path: `/crm/v3/objects/${spec.objectType}/search`,
    body: searchRequestBody(position, spec.lastModifiedProperty, spec.properties),
  });
  if (response.status !== 200) throw failureOf(response);
  const page = decodeEnvelope(PageWire, response, `search ${spec.objectType}`);
  const more = page.paging?.next?.after !== undefined;
  const { read, next } = afterSearchPage(position, page.results, more, spec.lastModifiedProperty, spec.objectType);
  return { results: read, next };
};

/**
 * The entity `read`: a full read pages the list endpoint; a delta read (`since`) pages search by
 * modification time and then the archived listing, whose ids are reported as the page's
 * `deleted` ids since `since` (the entity declares `deletes: "api"`).
 */
export async function* readCrmObjects<Rec, Encoded>(
  ctx: HubSpotContext,
  spec: CrmObjectSpec<Rec, Encoded>,
  options: ReadOptions,
): AsyncGenerator<ReadPage> {
  let cursor: ReadCursor | undefined = decodeCursor(ctx, options.cursor);
  if (cursor === undefined && options.since !== undefined) cursor = startOfSearch(options.since.getTime());
  if (cursor === undefined || cursor.phase === "list") {
    let after = cursor?.after;
    do {
      // A cancelled read must fail, never end early: an early end looks like "no more records".
      ctx.signal.throwIfAborted();
      const page = await listPage(ctx, spec, { after, archived: false });
      after = page.paging?.next?.after;
      yield {
        records: toRecords(ctx, spec, page.results),
        cursor: encodeCursor(after === undefined ? undefined : { phase: "list", after }),
      };
    } while (after !== undefined);
    return;
  }
  // The archived listing's first page does not depend on the search: it is requested while the
  // search pages are read, one round trip less per delta. (Objects archived after it was read are
  // reported by the next delta, whose bound the engine's overlap keeps before this one's end.) A
  // failed prefetch is simply requested again when the archived phase starts.
  const archivedFirstPage =
    cursor?.phase === "search" || cursor?.phase === "ties"
      ? listPage(ctx, spec, { after: undefined, archived: true })
      : undefined;
  archivedFirstPage?.catch(() => undefined);
  while (cursor?.phase === "search" || cursor?.phase === "ties") {
    ctx.signal.throwIfAborted();
    const { results, next }: { results: ReadonlyArray<unknown>; next: SearchPosition | undefined } = await searchPage(
      ctx,
      spec,
      cursor,
    );
    const following: ReadCursor = next ?? { phase: "archived", since: cursor.since };
    if (results.length > 0 || next === undefined)
      yield { records: toRecords(ctx, spec, results), cursor: encodeCursor(following) };
    cursor = following;
  }
  while (cursor?.phase === "archived") {
    ctx.signal.throwIfAborted();
    const since: number = cursor.since;
    const page: typeof PageWire.Type =
      cursor.after === undefined && archivedFirstPage !== undefined
        ? await archivedFirstPage.catch(() => listPage(ctx, spec, { after: undefined, archived: true }))
        : await listPage(ctx, spec, { after: cursor.after, archived: true });
    // The archived listing cannot filter by time; keep what was archived since the delta's bound.
    const recent = page.results.filter((raw: unknown) => {
      const archivedAt = (raw as { archivedAt?: unknown } | null)?.archivedAt;
      return typeof archivedAt !== "string" || !(Date.parse(archivedAt) < since);
    });
    const after: string | undefined = page.paging?.next?.after;
    cursor = after === undefined ? undefined : { phase: "archived", since, after };
    // Archived objects are deletions: reported as ids, which the engine soft-deletes.
    yield {
      records: [],
      deleted: recent.map(idOf).filter((id): id is string => id !== undefined),
      cursor: encodeCursor(cursor),
    };
  }
}

/**
 * The entity `readIds`: live ids from the list endpoint, a page at a time (reconciliation), each
 * with its modification time: the list asks for that one property (`lastmodifieddate`, or
 * `hs_lastmodifieddate` for companies), so a page costs what a page of bare ids costs and
 * reconciliation can re-fetch what a delta missed (search lags writes and can drop an object).
 * An object without a readable time is listed as a bare id (compared by id only).
 */
export async function* readCrmObjectIds<Rec, Encoded>(
  ctx: HubSpotContext,
  spec: CrmObjectSpec<Rec, Encoded>,
): AsyncGenerator<ReadonlyArray<string | ListedId>> {
  let after: string | undefined;
  do {
    ctx.signal.throwIfAborted();
    const page = await listPage(ctx, spec, { after, archived: false, properties: [spec.lastModifiedProperty] });
    after = page.paging?.next?.after;
    const listed: Array<string | ListedId> = [];
    for (const raw of page.results) {
      const id = idOf(raw);
      if (id === undefined) continue;
      // The property HubSpot keeps as the modification time; `updatedAt` holds the same instant.
      const at = modifiedAt(raw, spec.lastModifiedProperty) ?? topLevelUpdatedAt(raw);
      listed.push(at === undefined ? id : { id, updatedAt: new Date(at) });
    }
    yield listed;
  } while (after !== undefined);
}

const topLevelUpdatedAt = (raw: unknown): number | undefined => {
  const value = (raw as { updatedAt?: unknown } | null)?.updatedAt;
  const ms = typeof value === "string" ? Date.parse(value) : Number.NaN;
  return Number.isNaN(ms) ? undefined : ms;
};

/**
 * The entity `getMany`: `POST /crm/v3/objects/{type}/batch/read` with at most 100 ids a request.
 * Ids that do not exist (or are archived) come back in a 207's `errors[]` and are left out.
 * Records are returned mapped but not decoded: the engine decodes each, so one malformed
 * object is reported alone.
 * See https://developers.hubspot.com/docs/api/crm/contacts (batch read)
 */
export const getCrmObjects = async <Rec, Encoded>(
  ctx: HubSpotContext,
  spec: CrmObjectSpec<Rec, Encoded>,
  ids: ReadonlyArray<string>,
): Promise<ReadonlyArray<unknown>> => {
  const found: Array<unknown> = [];
  for (let start = 0; start < ids.length; start += batchMaxInputs) {
    ctx.signal.throwIfAborted();
    const chunk = ids.slice(start, start + batchMaxInputs);
    const outcome = await batchRequest(ctx, spec.objectType, "read", {
      inputs: chunk.map((id) => ({ id })),
      properties: spec.properties,
    });
    const unexpected = outcome.failures.find((f) => f.category !== "OBJECT_NOT_FOUND");
    if (unexpected !== undefined) {
      throw new Unavailable({ message: `batch read ${spec.objectType}: ${unexpected.category ?? "error"}` });
    }
    found.push(...toRecords(ctx, spec, outcome.results));
  }
  return found;
};

/**
 * `GET /crm/v3/objects/{type}/{id}` — null when it does not exist or is archived (HubSpot 404s both).
 */
export const getCrmObject = async <Rec, Encoded>(
  ctx: HubSpotContext,
  spec: CrmObjectSpec<Rec, Encoded>,
  id: string,
): Promise<Rec | null> => {
  const response = await hubSpotRequest(ctx, {
    path: `/crm/v3/objects/${spec.objectType}/${encodeURIComponent(id)}`,
    query: { properties: spec.properties.join(",") },
  });
  if (response.status === 404) return null;
  if (response.status !== 200) throw failureOf(response, id);
  return decodeRecord(spec, response.body, id);
};

/* ------------------------------------------------------------------------------------------------
 * Writes.
 * --------------------------------------------------------------------------------------------- */

/**
 * `POST /crm/v3/objects/{type}` -> 201. A duplicate contact email answers 409 CONFLICT
 * ("Contact already exists. Existing ID: N"), surfaced as Conflict with that id.
 */
export const createCrmObject = async <Rec, Encoded>(
  ctx: HubSpotContext,
  spec: CrmObjectSpec<Rec, Encoded>,
  properties: Record<string, string>,
): Promise<Rec> => {
  const response = await hubSpotRequest(ctx, {
    method: "POST",
    path: `/crm/v3/objects/${spec.objectType}`,
    body: { properties },
  });
  if (response.status !== 201 && response.status !== 200) throw failureOf(response);
  return decodeRecord(spec, response.body);
};

/**
 * `PATCH /crm/v3/objects/{type}/{id}` -> 200, then a GET: the PATCH answer carries only the
 * properties written, and callers expect the whole record.
 */
export const updateCrmObject = async <Rec, Encoded>(
  ctx: HubSpotContext,
  spec: CrmObjectSpec<Rec, Encoded>,
  id: string,
  properties: Record<string, string>,
): Promise<Rec> => {
  const response = await hubSpotRequest(ctx, {
    method: "PATCH",
    path: `/crm/v3/objects/${spec.objectType}/${encodeURIComponent(id)}`,
    body: { properties },
  });
  if (response.status !== 200) throw failureOf(response, id);
  const current = await getCrmObject(ctx, spec, id);
  if (current === null)
    throw new NotFound({ message: `${spec.objectType} ${id} vanished after an update`, externalId: id });
  return current;
};

/** `DELETE /crm/v3/objects/{type}/{id}` -> 204: archives (HubSpot keeps it 90 days in the recycle bin). */
export const archiveCrmObject = async <Rec, Encoded>(
  ctx: HubSpotContext,
  spec: CrmObjectSpec<Rec, Encoded>,
  id: string,
): Promise<void> => {
  const response = await hubSpotRequest(ctx, {
    method: "DELETE",
    path: `/crm/v3/objects/${spec.objectType}/${encodeURIComponent(id)}`,
  });
  if (response.status !== 204 && response.status !== 200) throw failureOf(response, id);
};

/** Batch endpoints take at most 100 inputs. */
export const batchMaxInputs = 100;

/** One input of a batch that failed (from a 207's `errors[]`). */
export interface BatchFailure {
  readonly category: string | undefined;
  readonly message: string;
  readonly context: Readonly<Record<string, ReadonlyArray<string>>>;
}

/**
 * `POST /crm/v3/objects/{type}/batch/{operation}` with at most 100 inputs. 200/201 means all
 * succeeded; 207 means some failed (their errors in `errors[]`, the rest in `results`).
 * See https://developers.hubspot.com/docs/api/crm/contacts (batch endpoints)
 */
export const batchRequest = async (
  ctx: HubSpotContext,
  objectType: CrmObjectType,
  operation: "read" | "create" | "update" | "upsert" | "archive",
  body: { readonly inputs: ReadonlyArray<unknown> } & Record<string, unknown>,
): Promise<{ readonly results: ReadonlyArray<unknown>; readonly failures: ReadonlyArray<BatchFailure> }> => {
  if (body.inputs.length > batchMaxInputs) {
    throw new InvalidRecord({
      message: `batch ${operation}: at most ${batchMaxInputs} inputs, got ${body.inputs.length}`,
    });
  }
  const response = await hubSpotRequest(ctx, {
    method: "POST",
    path: `/crm/v3/objects/${objectType}/batch/${operation}`,
    body,
  });
  if (response.status === 204) return { results: [], failures: [] };
  if (response.status !== 200 && response.status !== 201 && response.status !== 207) throw failureOf(response);
  const batch = decodeEnvelope(BatchWire, response, `batch ${operation} ${objectType}`);
  return {
    results: batch.results,
    failures: batch.errors.map((e) => ({ category: e.category, message: e.message, context: e.context ?? {} })),
  };
};
