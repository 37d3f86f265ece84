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
import type { BusinessCentralConfig } from "./config.ts";
import { afterDeltaPage, DeltaCursor, type DeltaPosition, deltaQuery, startOfDelta } from "./deltaPaging.ts";
import { ErrorWire, IdWire, PageWire } from "./wire.ts";

/** The context every Business Central function receives. */
export type BusinessCentralContext = ConnectorContext<BusinessCentralConfig>;

/** An entity set of `companies({id})/{entitySet}`. */
export type EntitySet = "items" | "customers";

/** What the shared read/write code needs to know about one entity. */
export interface EntitySpec<Rec, Encoded, Wire> {
  readonly entitySet: EntitySet;
  /** The vendor's shape of one entity. */
  readonly wire: Schema.Schema<Wire, any, never>;
  /** Normalized record schema. */
  readonly record: Schema.Schema<Rec, Encoded, never>;
  /** Wire entity -> encoded normalized record (the engine decodes it with `record`). */
  readonly toRecord: (wire: Wire) => Encoded;
}

interface BusinessCentralResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
}

const guidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for a well-formed GUID: BC ids are GUIDs, and any other key is a 400, not a 404. */
export const isGuid = (id: string) => guidPattern.test(id);

/** `{baseUrl}/v2.0/{tenant}/{environment}/api/v2.0`. */
export const apiRoot = (config: BusinessCentralConfig) =>
  `${config.baseUrl.replace(/\/+$/, "")}/v2.0/${encodeURIComponent(config.tenantId)}/${encodeURIComponent(config.environment)}/api/v2.0`;

/** `.../api/v2.0/companies({companyId})`. */
export const companyRoot = (config: BusinessCentralConfig) =>
  `${apiRoot(config)}/companies(${encodeURIComponent(config.companyId)})`;

export const collectionUrl = (config: BusinessCentralConfig, entitySet: EntitySet) =>
  `${companyRoot(config)}/${entitySet}`;

/**
 * One authenticated call. `ctx.http` sends the connection's access token (see
 * `businessCentralAuth`), gets a new one on a 401 and retries once, and maps 401/429/5xx/timeouts
 * to error reasons. Every call asks for pages of `pageSize` (`Prefer: odata.maxpagesize`); BC
 * ignores it elsewhere.
 */
export const businessCentralRequest = (
  ctx: BusinessCentralContext,
  input: {
    readonly method?: string;
    readonly url: string;
    readonly body?: unknown;
    readonly headers?: Record<string, string>;
  },
): Promise<BusinessCentralResponse> =>
  ctx.http.request({
    method: input.method ?? "GET",
    url: input.url,
    body: input.body,
    headers: { prefer: `odata.maxpagesize=${ctx.config.pageSize}`, ...input.headers },
  });

/** BC's error shape, or nothing: a body of any other shape is never quoted (it may not be BC's). */
const errorOf = (response: BusinessCentralResponse) => {
  const decoded = Schema.decodeUnknownEither(ErrorWire)(response.body);
  return decoded._tag === "Right" ? decoded.right.error : undefined;
};

/**
 * Maps a status `ctx.http` left to us to a connector error: 400 -> InvalidRecord (a refused
 * value, a read-only property), 403 -> AuthExpired (the app lacks permissions in BC),
 * 404 -> NotFound, 409/412 -> Conflict (`Request_EntityChanged`: the etag is stale), anything
 * else -> Unavailable.
 */
export const failureOf = (response: BusinessCentralResponse, externalId?: string): ConnectorError => {
  const error = errorOf(response);
  const code = vendorCode(error?.code);
  // BC's own message only where the tenant must fix the record (see ForeignResponse in core).
  const detail = [400, 409, 412].includes(response.status) ? vendorMessage(error?.message) : undefined;
  const message = `Business Central ${response.status}${code ? ` ${code}` : ""}${detail ? `: ${detail}` : ""}`;
  switch (response.status) {
    case 400:
      return new InvalidRecord({ message, externalId });
    case 403:
      return new AuthExpired({ message });
    case 404:
      return new NotFound({ message, externalId });
    case 409:
    case 412:
      // BC's 409 Request_EntityChanged: the If-Match etag is stale, the entity changed since.
      return new Conflict({
        message,
        externalId,
        ...(response.status === 412 || error?.code === "Request_EntityChanged" ? { reason: "version" as const } : {}),
      });
    default:
      return new Unavailable({ message, status: response.status });
  }
};

/** Decodes a response envelope; a shape we do not recognize is BC misbehaving (transient). */
const decodeEnvelope = <A, I>(
  schema: Schema.Schema<A, I, never>,
  response: BusinessCentralResponse,
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

/**
 * Wire entities -> encoded normalized records. One that does not match the wire schema is passed
 * through unchanged: the engine's decode with the entity's `record` schema rejects it and reports
 * it per record, so one bad entity never stops a read.
 */
const toRecords = <Rec, Encoded, Wire>(
  ctx: BusinessCentralContext,
  spec: EntitySpec<Rec, Encoded, Wire>,
  values: ReadonlyArray<unknown>,
) => {
  const decode = Schema.decodeUnknownEither(spec.wire);
  return values.map((raw) => {
    const wire = decode(raw);
    if (wire._tag === "Right") return spec.toRecord(wire.right);
    ctx.log.warn(`erp: malformed ${spec.entitySet} entity`, {
      id: (raw as { id?: unknown } | null)?.id,
      error: wire.left.message,
    });
    return raw;
  });
};

/** A whole entity, decoded (for `get` and writes); malformed -> InvalidRecord. */
export const decodeEntity = <Rec, Encoded, Wire>(
  spec: EntitySpec<Rec, Encoded, Wire>,
  raw: unknown,
  externalId?: string,
) => {
  const wire = Schema.decodeUnknownEither(spec.wire)(raw);
  if (wire._tag === "Left") {
    throw new InvalidRecord({ message: `malformed ${spec.entitySet} entity: ${shapeMismatch(wire.left)}`, externalId });
  }
  const record = Schema.decodeUnknownEither(spec.record)(spec.toRecord(wire.right));
  if (record._tag === "Left") throw new InvalidRecord({ message: record.left.message, externalId });
  return record.right;
};

/* ------------------------------------------------------------------------------------------------
 * Reads. The cursor the engine checkpoints is the page's `@odata.nextLink`.
 * --------------------------------------------------------------------------------------------- */

/**
 * A next link as a URL on our `baseUrl`. BC's links are absolute and name its own host: behind a
 * proxy (or a fake) they are re-rooted on `baseUrl`, and a link to another collection is refused,
 * so the bearer token never goes anywhere else. Undefined when the link is not ours.
 */
const ownLink = (config: BusinessCentralConfig, entitySet: EntitySet, link: string): string | undefined => {
  let url: URL;
  try {
    url = new URL(link);
  } catch {
    return undefined;
  }
  const expected = new URL(collectionUrl(config, entitySet));
  // BC's link names BC's path; a proxy's `baseUrl` may add a prefix before `/v2.0/`.
  const path = decodeURIComponent(expected.pathname);
  const tail = path.slice(path.indexOf("/v2.0/"));
  if (!decodeURIComponent(url.pathname).endsWith(tail)) return undefined;
  return `${expected.origin}${expected.pathname}${url.search}`;
};

/**
 * The first request of a full read (the collection in BC's default order, the primary key) or
 * of `readIds` (`$select`). A delta builds its own requests (see `deltaPaging.ts`).
 */
const firstLink = (config: BusinessCentralConfig, entitySet: EntitySet, select?: string) =>
  `${collectionUrl(config, entitySet)}${select === undefined ? "" : `?$select=${select}`}`;

/**
 * `GET companies({id})/{entitySet}` — one page, following server-driven paging.
 * Quirks: BC pages only when asked (`Prefer: odata.maxpagesize`, else up to 20,000 entities a
 * response) and answers `@odata.nextLink` (a `$skiptoken`) while more remain; `$top`/`$skip` are
 * client-driven offsets that shift when entities are inserted, so they are not used.
 * See https://learn.microsoft.com/dynamics365/business-central/dev-itpro/webservices/server-driven-paging-in-odata-web-services
 */
const listPage = async (ctx: BusinessCentralContext, entitySet: EntitySet, url: string) => {
  const response = await businessCentralRequest(ctx, { url });
  if (response.status !== 200) throw failureOf(response);
  const page = decodeEnvelope(PageWire, response, `list ${entitySet}`);
  const link = page["@odata.nextLink"];
  if (link === undefined) return { values: page.value, next: undefined };
  const next = ownLink(ctx.config, entitySet, link);
  if (next === undefined) throw new Unavailable({ message: `list ${entitySet}: unexpected @odata.nextLink ${link}` });
  return { values: page.value, next };
};

/**
 * The entity `read`. A full read pages from the first link (or the saved cursor, a next link)
 * until BC answers no next link: in primary-key order, which edits do not change. A delta
 * (`since`) pages by modification time, a new query per page (`readDelta`). Deletions are not
 * listed: BC has no tombstones (reconciliation and `deleted` notifications find them).
 */
export async function* readEntities<Rec, Encoded, Wire>(
  ctx: BusinessCentralContext,
  spec: EntitySpec<Rec, Encoded, Wire>,
  options: ReadOptions,
): AsyncGenerator<ReadPage> {
  if (options.since !== undefined) {
    yield* readDelta(ctx, spec, options.since, options.cursor);
    return;
  }
  let url: string | undefined;
  if (options.cursor !== undefined) {
    url = ownLink(ctx.config, spec.entitySet, options.cursor);
    if (url === undefined)
      ctx.log.warn("erp: ignoring an unreadable cursor; starting over", { cursor: options.cursor });
  }
  url ??= firstLink(ctx.config, spec.entitySet);
  while (url !== undefined) {
    // A cancelled read must fail, never end early: an early end looks like "no more records".
    ctx.signal.throwIfAborted();
    const page = await listPage(ctx, spec.entitySet, url);
    yield { records: toRecords(ctx, spec, page.values), cursor: page.next };
    url = page.next;
  }
}

/** Where a delta resumes: its checkpoint, or its bound when there is none (or an unreadable one). */
const deltaStart = (ctx: BusinessCentralContext, since: Date, cursor: string | undefined): DeltaPosition => {
  if (cursor === undefined) return startOfDelta(since.getTime());
  const decoded = Schema.decodeUnknownEither(DeltaCursor)(cursor);
  if (decoded._tag === "Right") return decoded.right;
  // A checkpoint of the earlier paging (a next link): the delta is read again from its bound.
  ctx.log.warn("erp: ignoring an unreadable delta cursor; starting over from the bound", { cursor });
  return startOfDelta(since.getTime());
};

/**
 * A delta: `lastModifiedDateTime ge since`, ordered by it, each page a new query from the last
 * modification time read (see `deltaPaging.ts`: a next link may skip when an entity is edited
 * between two pages); the checkpoint is the position as JSON.
 */
async function* readDelta<Rec, Encoded, Wire>(
  ctx: BusinessCentralContext,
  spec: EntitySpec<Rec, Encoded, Wire>,
  since: Date,
  cursor: string | undefined,
): AsyncGenerator<ReadPage> {
  let position: DeltaPosition | undefined = deltaStart(ctx, since, cursor);
  while (position !== undefined) {
    ctx.signal.throwIfAborted();
    const url: string | undefined =
      position.phase === "ties" && position.next !== undefined
        ? ownLink(ctx.config, spec.entitySet, position.next)
        : `${collectionUrl(ctx.config, spec.entitySet)}?${deltaQuery(position)}`;
    if (url === undefined)
      throw new Unavailable({ message: `list ${spec.entitySet}: a delta cursor with a foreign link` });
    const page = await listPage(ctx, spec.entitySet, url);
    const step: { read: ReadonlyArray<unknown>; next: DeltaPosition | undefined } = afterDeltaPage(
      position,
      page.values,
      page.next,
      spec.entitySet,
    );
    position = step.next;
    if (step.read.length > 0 || position === undefined) {
      yield {
        records: toRecords(ctx, spec, step.read),
        cursor: position === undefined ? undefined : Schema.encodeSync(DeltaCursor)(position),
      };
    }
  }
}

/**
 * The entity `readIds`: `$select=id,lastModifiedDateTime`, a page at a time (reconciliation):
 * the modification time the record's `updatedAt` is, in the same listing, so reconciliation can
 * re-fetch what a delta missed. An entity without a readable time is listed as a bare id.
 */
export async function* readEntityIds(
  ctx: BusinessCentralContext,
  entitySet: EntitySet,
): AsyncGenerator<ReadonlyArray<string | ListedId>> {
  let url: string | undefined = firstLink(ctx.config, entitySet, "id,lastModifiedDateTime");
  const decode = Schema.decodeUnknownEither(IdWire);
  while (url !== undefined) {
    ctx.signal.throwIfAborted();
    const page = await listPage(ctx, entitySet, url);
    const listed: Array<string | ListedId> = [];
    for (const raw of page.values) {
      const decoded = decode(raw);
      // An id we cannot read would look deleted; a shape we do not know is BC misbehaving.
      if (decoded._tag === "Left") throw new Unavailable({ message: `list ${entitySet} ids: an entity without an id` });
      const { id, lastModifiedDateTime } = decoded.right;
      const at = typeof lastModifiedDateTime === "string" ? Date.parse(lastModifiedDateTime) : Number.NaN;
      listed.push(Number.isNaN(at) ? id : { id, updatedAt: new Date(at) });
    }
    yield listed;
    url = page.next;
  }
}

const entityUrl = (config: BusinessCentralConfig, entitySet: EntitySet, id: string) =>
  `${collectionUrl(config, entitySet)}(${id})`;

/** `GET .../{entitySet}({id})`, raw: undefined when it does not exist. */
const fetchEntity = async (ctx: BusinessCentralContext, entitySet: EntitySet, id: string) => {
  if (!isGuid(id)) return undefined;
  const response = await businessCentralRequest(ctx, { url: entityUrl(ctx.config, entitySet, id) });
  if (response.status === 404) return undefined;
  if (response.status !== 200) throw failureOf(response, id);
  return response.body;
};

/** `GET .../{entitySet}({id})` — null when it does not exist (404 `Internal_RecordNotFound`, or not a GUID). */
export const getEntity = async <Rec, Encoded, Wire>(
  ctx: BusinessCentralContext,
  spec: EntitySpec<Rec, Encoded, Wire>,
  id: string,
): Promise<Rec | null> => {
  const raw = await fetchEntity(ctx, spec.entitySet, id);
  return raw === undefined ? null : decodeEntity(spec, raw, id);
};

/* ------------------------------------------------------------------------------------------------
 * Writes.
 * --------------------------------------------------------------------------------------------- */

/** The current etag of an entity (a fresh GET), or undefined when it does not exist. */
const currentEtag = async (ctx: BusinessCentralContext, entitySet: EntitySet, id: string) => {
  const raw = await fetchEntity(ctx, entitySet, id);
  if (raw === undefined) return undefined;
  const etag = (raw as { "@odata.etag"?: unknown } | null)?.["@odata.etag"];
  if (typeof etag !== "string") throw new Unavailable({ message: `${entitySet} ${id}: the entity has no @odata.etag` });
  return etag;
};

/** `POST .../{entitySet}` -> 201 with the created entity. */
export const createEntity = async <Rec, Encoded, Wire>(
  ctx: BusinessCentralContext,
  spec: EntitySpec<Rec, Encoded, Wire>,
  body: Record<string, unknown>,
): Promise<Rec> => {
  const response = await businessCentralRequest(ctx, {
    method: "POST",
    url: collectionUrl(ctx.config, spec.entitySet),
    body,
  });
  if (response.status !== 201 && response.status !== 200) throw failureOf(response);
  return decodeEntity(spec, response.body);
};

/**
 * `PATCH .../{entitySet}({id})` with `If-Match` -> 200 with the whole entity. BC refuses a PATCH
 * without `If-Match` (400 BadRequest_InvalidToken). With `ifVersion` (the etag the change was made
 * against) the write is conditional: an entity changed since answers 409 Request_EntityChanged, a
 * version Conflict. Without it the etag comes from a GET just before, so only a change landing in
 * between is a Conflict.
 * See https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/api/dynamics_item_update
 */
export const updateEntity = async <Rec, Encoded, Wire>(
  ctx: BusinessCentralContext,
  spec: EntitySpec<Rec, Encoded, Wire>,
  id: string,
  body: Record<string, unknown>,
  ifVersion?: string,
): Promise<Rec> => {
  const etag = ifVersion ?? (isGuid(id) ? await currentEtag(ctx, spec.entitySet, id) : undefined);
  if (etag === undefined || !isGuid(id)) {
    throw new NotFound({ message: `${spec.entitySet} ${id} does not exist`, externalId: id });
  }
  const response = await businessCentralRequest(ctx, {
    method: "PATCH",
    url: entityUrl(ctx.config, spec.entitySet, id),
    body,
    headers: { "if-match": etag },
  });
  if (response.status !== 200) throw failureOf(response, id);
  return decodeEntity(spec, response.body, id);
};

/**
 * `DELETE .../{entitySet}({id})` with `If-Match` -> 204. Deleting what is already gone succeeds.
 * With `ifVersion` conditional, as `updateEntity`.
 */
export const deleteEntity = async (
  ctx: BusinessCentralContext,
  entitySet: EntitySet,
  id: string,
  ifVersion?: string,
): Promise<void> => {
  if (!isGuid(id)) return;
  const etag = ifVersion ?? (await currentEtag(ctx, entitySet, id));
  if (etag === undefined) return;
  const response = await businessCentralRequest(ctx, {
    method: "DELETE",
    url: entityUrl(ctx.config, entitySet, id),
    headers: { "if-match": etag },
  });
  if (response.status === 404) return;
  if (response.status !== 204 && response.status !== 200) throw failureOf(response, id);
};
