import { createHmac, randomUUID } from "node:crypto";
import type { FakeClock } from "../hubspot/FakeClock.ts";
import type { FakeHttpRequest, FakeHttpResponse } from "../hubspot/HubSpotApi.ts";
import type { SalesforceFakeKnobs, SalesforceFault, SalesforceTokenFault } from "./SalesforceFaults.ts";
import {
  type SalesforceError,
  type SalesforceObjectType,
  type SalesforceStore,
  type SalesforceWriteResult,
  type StoredSalesforceRecord,
  salesforceDateTimeFields,
  salesforceFieldsOf,
  salesforceObjectSchemas,
  salesforceObjectTypes,
  salesforceRecordId,
} from "./SalesforceStore.ts";
import { parseSoql, type SoqlQuery } from "./Soql.ts";

/** OAuth client credentials (a connected app's consumer key and secret) and a refresh token the fake accepts. */
export interface SalesforceOAuthApp {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly refreshToken: string;
}

/** One open query cursor (what `nextRecordsUrl` points at). */
interface QueryLocator {
  /** The rows as the query produced them: Salesforce pages a snapshot of the result. */
  readonly rows: ReadonlyArray<Record<string, unknown>>;
  readonly batchSize: number;
  lastUsed: number;
}

/** Everything the API layer reads and mutates; owned by the fake (see createSalesforceFake). */
export interface SalesforceApiState {
  readonly instanceUrl: string;
  readonly loginUrl: string;
  readonly organizationId: string;
  readonly store: SalesforceStore;
  readonly clock: FakeClock;
  readonly knobs: SalesforceFakeKnobs;
  readonly random: () => number;
  readonly oauthApps: Array<SalesforceOAuthApp>;
  /** Access tokens issued by the token endpoint: true while valid. */
  readonly sessions: Map<string, boolean>;
  readonly queuedFaults: Array<SalesforceFault>;
  readonly queuedTokenFaults: Array<SalesforceTokenFault>;
  readonly locators: Map<string, QueryLocator>;
  readonly counters: { apiUsage: number; locators: number };
  /** Every request received, for assertions; `soql` is the decoded query of query calls. */
  readonly requestLog: Array<SalesforceRequestLogEntry>;
  readonly hangs: Set<() => void>;
}

export interface SalesforceRequestLogEntry {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly soql?: string;
}

/** Salesforce's largest (and default) query batch. */
const maxBatchSize = 2_000;
/** The recycle bin and the delete log keep records this long. */
const retentionMs = 15 * 24 * 60 * 60 * 1000;

const json = (status: number, body: unknown, headers: Record<string, string> = {}): FakeHttpResponse => ({
  status,
  headers: { "content-type": "application/json;charset=UTF-8", ...headers },
  body,
});

/** Errors are a JSON array: `[{ message, errorCode, fields? }]`. */
const errors = (status: number, list: ReadonlyArray<SalesforceError>, headers: Record<string, string> = {}) =>
  json(status, list, headers);

const error = (status: number, errorCode: string, message: string, headers: Record<string, string> = {}) =>
  errors(status, [{ message, errorCode }], headers);

const notFound = () => error(404, "NOT_FOUND", "The requested resource does not exist");

/** `2021-12-02T18:25:26.000+0000`: how the REST API writes datetimes. */
export const salesforceDateTime = (ms: number) => new Date(ms).toISOString().replace("Z", "+0000");

const minute = (ms: number) => Math.floor(ms / 60_000) * 60_000;

const objectTypeOf = (segment: string | undefined): SalesforceObjectType | undefined =>
  salesforceObjectTypes.find((t) => t.toLowerCase() === segment?.toLowerCase());

const fieldValue = (record: StoredSalesforceRecord, field: string): string | number | boolean | null => {
  if (field === "Id") return record.Id;
  if (field === "IsDeleted") return record.IsDeleted;
  if (field === "CreatedDate" || field === "LastModifiedDate" || field === "SystemModstamp") return record[field];
  return record.fields[field] ?? null;
};

/** The wire row: `attributes`, then the fields asked for, datetimes formatted, malformed when the knob says so. */
const toRow = (
  state: SalesforceApiState,
  version: string,
  record: StoredSalesforceRecord,
  fields: ReadonlyArray<string>,
): Record<string, unknown> => {
  const row: Record<string, unknown> = {
    attributes: { type: record.type, url: `/services/data/${version}/sobjects/${record.type}/${record.Id}` },
  };
  for (const field of fields) {
    const value = fieldValue(record, field);
    row[field] =
      (salesforceDateTimeFields as ReadonlyArray<string>).includes(field) && typeof value === "number"
        ? salesforceDateTime(value)
        : value;
  }
  if (state.knobs.malformedIds.has(record.Id)) {
    if ("SystemModstamp" in row) row.SystemModstamp = "yesterday";
    const name = record.type === "Contact" ? "LastName" : "Name";
    if (name in row) row[name] = 12345;
  }
  return row;
};

const compareValues = (a: unknown, b: unknown): number => {
  // SOQL sorts nulls first in ascending order.
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  return a < b ? -1 : 1;
};

const matches = (record: StoredSalesforceRecord, where: NonNullable<SoqlQuery["where"]>): boolean => {
  const value = fieldValue(record, where.field) as number;
  switch (where.operator) {
    case ">":
      return value > where.value;
    case ">=":
      return value >= where.value;
    case "<":
      return value < where.value;
    case "<=":
      return value <= where.value;
    case "=":
      return value === where.value;
  }
};

/** `Sforce-Query-Options: batchSize=N`, clamped to [knobs.minBatchSize, 2,000] as Salesforce clamps it to [200, 2,000]. */
const batchSizeOf = (state: SalesforceApiState, request: FakeHttpRequest): number => {
  const option = /batchSize\s*=\s*(\d+)/i.exec(request.headers.get("sforce-query-options") ?? "");
  if (option === null) return maxBatchSize;
  return Math.min(maxBatchSize, Math.max(state.knobs.minBatchSize, Number(option[1])));
};

const page = (version: string, endpoint: string, locatorId: string, locator: QueryLocator, offset: number) => {
  const end = offset + locator.batchSize;
  const done = end >= locator.rows.length;
  return json(200, {
    totalSize: locator.rows.length,
    done,
    ...(done ? {} : { nextRecordsUrl: `/services/data/${version}/${endpoint}/${locatorId}-${end}` }),
    records: locator.rows.slice(offset, end),
  });
};

/** `GET /services/data/vNN.0/query?q=` (or `queryAll`, which includes the recycle bin). */
const runQuery = (
  state: SalesforceApiState,
  request: FakeHttpRequest,
  version: string,
  endpoint: "query" | "queryAll",
): FakeHttpResponse => {
  const soql = request.url.searchParams.get("q");
  if (soql === null || soql.trim() === "") return error(400, "MALFORMED_QUERY", "A query string has to be specified");
  const parsed = parseSoql(soql);
  if ("error" in parsed) return errors(400, [parsed.error]);
  const { query } = parsed;
  const now = state.clock.now();
  // queryAll sees the recycle bin, which is emptied of records deleted more than 15 days ago.
  const visible = (r: StoredSalesforceRecord) =>
    !r.IsDeleted || (endpoint === "queryAll" && r.deletedAt !== null && r.deletedAt >= now - retentionMs);
  let selected = state.store
    .all(query.object)
    .filter((r) => visible(r) && (query.where === undefined || matches(r, query.where)));
  if (query.orderBy.length > 0) {
    selected = selected
      .map((record) => ({ record, keys: query.orderBy.map((o) => fieldValue(record, o.field)) }))
      .sort((a, b) => {
        for (const [i, order] of query.orderBy.entries()) {
          const difference = compareValues(a.keys[i], b.keys[i]);
          if (difference !== 0) return order.descending ? -difference : difference;
        }
        return 0;
      })
      .map((k) => k.record);
  }
  if (query.limit !== undefined) selected = selected.slice(0, query.limit);
  const rows = selected.map((r) => toRow(state, version, r, query.fields));
  const locatorId = salesforceRecordId("01g", ++state.counters.locators);
  const locator: QueryLocator = { rows, batchSize: batchSizeOf(state, request), lastUsed: now };
  state.locators.set(locatorId, locator);
  // Salesforce keeps a few open cursors per user and drops the oldest past that.
  for (const oldest of state.locators.keys()) {
    if (state.locators.size <= state.knobs.maxOpenLocators) break;
    state.locators.delete(oldest);
  }
  return page(version, endpoint, locatorId, locator, 0);
};

/** `GET /services/data/vNN.0/query/{locator}-{offset}`: the next page of an open query. */
const nextPage = (state: SalesforceApiState, version: string, endpoint: string, cursor: string): FakeHttpResponse => {
  const match = /^(\w{18})-(\d+)$/.exec(cursor);
  const locator = match === null ? undefined : state.locators.get(match[1]!);
  const now = state.clock.now();
  if (match === null || locator === undefined || now - locator.lastUsed > state.knobs.queryLocatorTtlMs) {
    if (match !== null) state.locators.delete(match[1]!);
    return error(400, "INVALID_QUERY_LOCATOR", "invalid query locator");
  }
  locator.lastUsed = now;
  return page(version, endpoint, match[1]!, locator, Number(match[2]));
};

/**
 * `GET /sobjects/{Object}/deleted/?start=&end=`: the delete log, 15 days back at most. Seconds
 * are ignored (both bounds are truncated to the minute), as Salesforce documents.
 * See https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_getdeleted.htm
 */
const getDeleted = (state: SalesforceApiState, type: SalesforceObjectType, url: URL): FakeHttpResponse => {
  const start = Date.parse(url.searchParams.get("start") ?? "");
  const end = Date.parse(url.searchParams.get("end") ?? "");
  if (Number.isNaN(start) || Number.isNaN(end)) {
    return error(400, "MALFORMED_QUERY", "start and end must be dateTimes like 2013-05-05T00:00:00+00:00");
  }
  const now = state.clock.now();
  const earliest = minute(now - retentionMs);
  // (unverified) the exact error code Salesforce answers for a start outside the window.
  if (minute(start) < earliest) {
    return error(400, "INVALID_REPLICATION_DATE", "startDate cannot be before earliestDateAvailable");
  }
  if (end < start) return error(400, "INVALID_REPLICATION_DATE", "endDate must be after startDate");
  const from = minute(start);
  const to = minute(Math.min(end, now));
  const deletedRecords = state.store
    .all(type)
    .filter((r) => r.IsDeleted && r.deletedAt !== null && r.deletedAt >= from && r.deletedAt < to)
    .map((r) => ({ id: r.Id, deletedDate: salesforceDateTime(r.deletedAt!) }));
  return json(200, {
    deletedRecords,
    earliestDateAvailable: salesforceDateTime(earliest),
    latestDateCovered: salesforceDateTime(to),
  });
};

const parseBody = (request: FakeHttpRequest): { value: Record<string, unknown> } | { error: FakeHttpResponse } => {
  try {
    const value = request.body === "" ? {} : JSON.parse(request.body);
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
    return { value };
  } catch {
    return {
      error: error(
        400,
        "JSON_PARSER_ERROR",
        "Unexpected character ('x' (code 120)): expected a valid value at [line:1, column:1]",
      ),
    };
  }
};

/**
 * `If-Unmodified-Since` on a PATCH of sObject Rows: the write happens only if the record's
 * LastModifiedDate is not after the date (HTTP dates have whole seconds, so the comparison is in
 * seconds); otherwise 412 and nothing is written. An unreadable date is a 400. Salesforce honours
 * it on sObject Rows, not on DELETE and not on the collections.
 * See https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_rest_conditional_requests.htm
 * (unverified) the error codes of the 412 and the 400 bodies.
 */
const unmodifiedSinceFailure = (
  record: StoredSalesforceRecord | undefined,
  request: FakeHttpRequest,
): FakeHttpResponse | undefined => {
  const header = request.headers.get("if-unmodified-since");
  if (header === null || record === undefined || record.IsDeleted) return undefined;
  const since = Date.parse(header);
  if (Number.isNaN(since)) {
    return error(400, "INVALID_HEADER_TYPE", `If-Unmodified-Since: not an HTTP date: ${header}`);
  }
  if (Math.floor(record.LastModifiedDate / 1000) * 1000 <= since) return undefined;
  return error(
    412,
    "PRECONDITION_FAILED",
    `The requested record was modified after ${new Date(since).toUTCString()}: LastModifiedDate ${salesforceDateTime(record.LastModifiedDate)}`,
  );
};

/** `/services/data/vNN.0/sobjects/...` */
const sobjects = (
  state: SalesforceApiState,
  request: FakeHttpRequest,
  version: string,
  rest: ReadonlyArray<string>,
) => {
  const method = request.method.toUpperCase();
  const type = objectTypeOf(rest[0]);
  if (type === undefined) return error(404, "NOT_FOUND", `The requested resource does not exist`);
  if (rest.length === 1 && method === "POST") {
    const body = parseBody(request);
    if ("error" in body) return body.error;
    const outcome = state.store.create(type, body.value);
    if ("errors" in outcome) return errors(outcome.status, outcome.errors);
    return json(201, { id: outcome.record.Id, success: true, errors: [] });
  }
  if (rest.length !== 2) return notFound();
  if (rest[1] === "deleted" && method === "GET") return getDeleted(state, type, request.url);
  const id = rest[1]!;
  if (method === "GET") {
    const record = state.store.get(type, id);
    if (record === undefined) return notFound();
    if (record.IsDeleted) return error(404, "ENTITY_IS_DELETED", "entity is deleted");
    const requested = request.url.searchParams.get("fields");
    const known = new Set(salesforceFieldsOf(type));
    const fields =
      requested === null
        ? salesforceFieldsOf(type)
        : [
            "Id",
            ...requested
              .split(",")
              .map((f) => f.trim())
              .filter((f) => f !== "" && f !== "Id"),
          ];
    const unknown = fields.find((f) => !known.has(f));
    if (unknown !== undefined)
      return error(400, "INVALID_FIELD", `No such column '${unknown}' on sobject of type ${type}`);
    return json(200, toRow(state, version, record, fields));
  }
  if (method === "PATCH") {
    const body = parseBody(request);
    if ("error" in body) return body.error;
    const refused = unmodifiedSinceFailure(state.store.get(type, id), request);
    if (refused !== undefined) return refused;
    const outcome = state.store.update(type, id, body.value);
    if ("errors" in outcome) return errors(outcome.status, outcome.errors);
    return { status: 204, headers: {} };
  }
  if (method === "DELETE") {
    const outcome = state.store.delete(type, id);
    if ("errors" in outcome) return errors(outcome.status, outcome.errors);
    return { status: 204, headers: {} };
  }
  return error(405, "METHOD_NOT_ALLOWED", `HTTP Method '${method}' not allowed. Allowed are GET,PATCH,DELETE`);
};

const route = (state: SalesforceApiState, request: FakeHttpRequest): FakeHttpResponse => {
  const segments = request.url.pathname.split("/").filter((s) => s !== "");
  if (segments[0] !== "services" || segments[1] !== "data" || !/^v\d+\.\d$/.test(segments[2] ?? "")) return notFound();
  const version = segments[2]!;
  const [resource, ...rest] = segments.slice(3);
  const method = request.method.toUpperCase();
  if ((resource === "query" || resource === "queryAll") && method === "GET") {
    if (rest.length === 0) return runQuery(state, request, version, resource);
    if (rest.length === 1) return nextPage(state, version, resource, rest[0]!);
  }
  if (resource === "sobjects") return sobjects(state, request, version, rest);
  if (resource === "composite" && rest[0] === "sobjects") return collections(state, request, version, rest.slice(1));
  if (resource === "composite" && rest.length === 0 && method === "POST") return composite(state, request);
  return notFound();
};

/* ------------------------------------------------------------------------------------------------
 * sObject Collections (`/composite/sobjects`) and Composite (`/composite`): many records a request,
 * one result each, in the request's order. One API call each, however many records.
 * --------------------------------------------------------------------------------------------- */

/** Records a collection request takes (create, update, delete). */
export const salesforceCollectionMax = 200;
/** Subrequests a composite request takes. */
export const salesforceCompositeMax = 25;

/** A collection's per-record result; its errors carry `statusCode` (not `errorCode`). */
const collectionResult = (id: string | undefined, outcome: SalesforceWriteResult) =>
  "record" in outcome
    ? { id: outcome.record.Id, success: true, errors: [] }
    : {
        ...(id !== undefined ? { id } : {}),
        success: false,
        errors: outcome.errors.map((e) => ({
          statusCode: e.errorCode,
          message: e.message,
          fields: e.fields ?? [],
          ...(e.duplicateResult !== undefined ? { duplicateResult: e.duplicateResult } : {}),
        })),
      };

const failedWith = (errorCode: string, message: string, fields: ReadonlyArray<string> = []): SalesforceWriteResult => ({
  status: 400,
  errors: [{ errorCode, message, fields }],
});

/** The type a record id names, by its key prefix (003 Contact, 001 Account). */
const typeOfId = (id: string): SalesforceObjectType | undefined =>
  salesforceObjectTypes.find((t) => id.startsWith(salesforceObjectSchemas[t].keyPrefix));

/** `{ attributes: { type }, ...fields }` -> the type and the fields to write, or why not. */
const collectionRecord = (
  raw: unknown,
): { type: SalesforceObjectType; id: string | undefined; fields: Record<string, unknown> } | SalesforceWriteResult => {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return failedWith("JSON_PARSER_ERROR", "each record must be a JSON object");
  }
  const { attributes, id, Id, ...fields } = raw as Record<string, unknown>;
  const type = objectTypeOf((attributes as { type?: string } | undefined)?.type);
  if (type === undefined)
    return failedWith("INVALID_TYPE", "Each record must name its sObject type in attributes.type");
  const recordId = typeof id === "string" ? id : typeof Id === "string" ? Id : undefined;
  return { type, id: recordId, fields };
};

/**
 * `POST /composite/sobjects` (create), `PATCH` (update), `DELETE ?ids=` and `GET
 * /composite/sobjects/{Object}?ids=&fields=` (retrieve). Bodies are `{ allOrNone, records }`; the
 * answer is 200 with one `{ id, success, errors }` per record in order (retrieve: the records,
 * null for ids not found). The fake serves `allOrNone: false` (each record on its own) only.
 * See https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections.htm
 * (unverified) the error code of a request over 200 records.
 */
const collections = (
  state: SalesforceApiState,
  request: FakeHttpRequest,
  version: string,
  rest: ReadonlyArray<string>,
): FakeHttpResponse => {
  const method = request.method.toUpperCase();
  const tooMany = (n: number, limit: number) =>
    error(
      400,
      "EXCEEDED_ID_LIMIT",
      `record limit reached. cannot submit more than ${limit} records into this call: ${n}`,
    );
  if (method === "GET") {
    const type = objectTypeOf(rest[0]);
    if (type === undefined || rest.length !== 1) return notFound();
    const ids = (request.url.searchParams.get("ids") ?? "").split(",").filter((id) => id !== "");
    const fields = (request.url.searchParams.get("fields") ?? "").split(",").filter((f) => f !== "");
    if (ids.length === 0 || fields.length === 0) {
      return error(400, "MALFORMED_QUERY", "ids and fields are required");
    }
    if (ids.length > 2_000) return tooMany(ids.length, 2_000);
    const known = new Set(salesforceFieldsOf(type));
    const unknown = fields.find((f) => !known.has(f));
    if (unknown !== undefined)
      return error(400, "INVALID_FIELD", `No such column '${unknown}' on sobject of type ${type}`);
    return json(
      200,
      ids.map((id) => {
        const record = state.store.get(type, id);
        return record === undefined || record.IsDeleted
          ? null
          : toRow(state, version, record, ["Id", ...fields.filter((f) => f !== "Id")]);
      }),
    );
  }
  if (rest.length !== 0) return notFound();
  if (method === "DELETE") {
    const ids = (request.url.searchParams.get("ids") ?? "").split(",").filter((id) => id !== "");
    if (ids.length === 0) return error(400, "MALFORMED_QUERY", "ids is required");
    if (ids.length > salesforceCollectionMax) return tooMany(ids.length, salesforceCollectionMax);
    if (request.url.searchParams.get("allOrNone") === "true") return allOrNoneUnsupported();
    return json(
      200,
      ids.map((id) => {
        const type = typeOfId(id);
        const outcome =
          type === undefined
            ? failedWith("INVALID_CROSS_REFERENCE_KEY", `invalid cross reference id`)
            : state.store.delete(type, id);
        return collectionResult(id, outcome);
      }),
    );
  }
  if (method !== "POST" && method !== "PATCH") {
    return error(405, "METHOD_NOT_ALLOWED", `HTTP Method '${method}' not allowed. Allowed are GET,POST,PATCH,DELETE`);
  }
  const body = parseBody(request);
  if ("error" in body) return body.error;
  const records = body.value.records;
  if (!Array.isArray(records)) return error(400, "JSON_PARSER_ERROR", "records is required");
  if (records.length > salesforceCollectionMax) return tooMany(records.length, salesforceCollectionMax);
  if (body.value.allOrNone === true) return allOrNoneUnsupported();
  return json(
    200,
    records.map((raw) => {
      const parsed = collectionRecord(raw);
      if (!("type" in parsed)) return collectionResult(undefined, parsed);
      if (method === "POST") {
        if (parsed.id !== undefined) {
          return collectionResult(
            undefined,
            failedWith("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"]),
          );
        }
        return collectionResult(undefined, state.store.create(parsed.type, parsed.fields));
      }
      if (parsed.id === undefined) {
        return collectionResult(
          undefined,
          failedWith("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"]),
        );
      }
      return collectionResult(parsed.id, state.store.update(parsed.type, parsed.id, parsed.fields));
    }),
  );
};

const allOrNoneUnsupported = () =>
  error(400, "FAKE_UNSUPPORTED", "this fake serves allOrNone: false only (each record succeeds or fails alone)");

/**
 * `POST /composite`: up to 25 subrequests `{ method, url, referenceId, body?, httpHeaders? }`,
 * each answered as its own request would be (the headers it names included, such as
 * `If-Unmodified-Since`), in `{ compositeResponse: [{ body, httpHeaders, httpStatusCode,
 * referenceId }] }`. With `allOrNone: false` a failed subrequest leaves the others alone. The fake
 * does not resolve `@{reference}` expressions.
 * See https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_composite.htm
 */
const composite = (state: SalesforceApiState, request: FakeHttpRequest): FakeHttpResponse => {
  const body = parseBody(request);
  if ("error" in body) return body.error;
  const subrequests = body.value.compositeRequest;
  if (!Array.isArray(subrequests) || subrequests.length === 0) {
    return error(400, "JSON_PARSER_ERROR", "compositeRequest is required");
  }
  if (subrequests.length > salesforceCompositeMax) {
    return error(400, "INVALID_INPUT", `the composite request may have at most ${salesforceCompositeMax} subrequests`);
  }
  if (body.value.allOrNone === true) return allOrNoneUnsupported();
  const compositeResponse = subrequests.map((raw) => {
    const sub = (raw ?? {}) as {
      method?: unknown;
      url?: unknown;
      referenceId?: unknown;
      body?: unknown;
      httpHeaders?: Record<string, string>;
    };
    const referenceId = typeof sub.referenceId === "string" ? sub.referenceId : "";
    if (typeof sub.method !== "string" || typeof sub.url !== "string" || !sub.url.startsWith("/services/data/")) {
      const answer = errors(400, [{ errorCode: "INVALID_INPUT", message: "a subrequest needs a method and a url" }]);
      return { body: answer.body, httpHeaders: {}, httpStatusCode: 400, referenceId };
    }
    const headers = new Headers(request.headers);
    for (const [name, value] of Object.entries(sub.httpHeaders ?? {})) headers.set(name, value);
    const answer = route(state, {
      method: sub.method,
      url: new URL(sub.url, request.url),
      headers,
      body: sub.body === undefined ? "" : JSON.stringify(sub.body),
    });
    return {
      body: answer.body ?? null,
      httpHeaders: Object.fromEntries(Object.entries(answer.headers).filter(([name]) => name === "location")),
      httpStatusCode: answer.status,
      referenceId,
    };
  });
  return json(200, { compositeResponse });
};

/** `POST /services/oauth2/token` (form encoded): the refresh-token grant. */
const issueToken = (state: SalesforceApiState, request: FakeHttpRequest): FakeHttpResponse => {
  const fault = state.queuedTokenFaults.shift();
  if (fault?.kind === "status")
    return json(fault.status, { error: "server_error", error_description: "internal error" });
  const form = new URLSearchParams(request.body);
  if (form.get("grant_type") !== "refresh_token") {
    return json(400, { error: "unsupported_grant_type", error_description: "grant type not supported" });
  }
  const app = state.oauthApps.find((a) => a.clientId === form.get("client_id"));
  if (app === undefined)
    return json(400, { error: "invalid_client_id", error_description: "client identifier invalid" });
  if (app.clientSecret !== form.get("client_secret")) {
    return json(400, { error: "invalid_client", error_description: "invalid client credentials" });
  }
  if (fault?.kind === "invalidGrant" || app.refreshToken !== form.get("refresh_token")) {
    return json(400, { error: "invalid_grant", error_description: "expired access/refresh token" });
  }
  const accessToken = `${state.organizationId.slice(0, 15)}!AQ${randomUUID().replaceAll("-", "")}`;
  state.sessions.set(accessToken, true);
  const rotated = state.knobs.rotateRefreshTokens ? `5Aep861rotated.${randomUUID()}` : undefined;
  if (rotated !== undefined) state.oauthApps[state.oauthApps.indexOf(app)] = { ...app, refreshToken: rotated };
  const id = `${state.loginUrl}/id/${state.organizationId}/0055g00000ABCDEIAA`;
  const issuedAt = String(state.clock.now());
  return json(200, {
    access_token: accessToken,
    ...(rotated !== undefined ? { refresh_token: rotated } : {}),
    // The signature lets a client check id and issued_at came from Salesforce: HMAC-SHA256 keyed by the client secret.
    signature: createHmac("sha256", app.clientSecret)
      .update(id + issuedAt)
      .digest("base64"),
    scope: "refresh_token api",
    instance_url: state.instanceUrl,
    id,
    token_type: "Bearer",
    issued_at: issuedAt,
  });
};

const sleep = (state: SalesforceApiState, ms: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      state.hangs.delete(done);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref?.();
    state.hangs.add(done);
    signal?.addEventListener("abort", done, { once: true });
  });

const statusErrorCodes: Record<number, string> = {
  429: "REQUEST_LIMIT_EXCEEDED",
  500: "UNKNOWN_EXCEPTION",
  502: "SERVER_UNAVAILABLE",
  503: "SERVER_UNAVAILABLE",
};

const drawFault = (state: SalesforceApiState): SalesforceFault | undefined => {
  const queued = state.queuedFaults.shift();
  if (queued !== undefined) return queued;
  if (state.knobs.serverErrorRate > 0 && state.random() < state.knobs.serverErrorRate) {
    return { kind: "status", status: [500, 502, 503][Math.floor(state.random() * 3)]! };
  }
  return undefined;
};

const requestLimitExceeded = (concurrent: boolean, headers: Record<string, string>) =>
  error(
    403,
    "REQUEST_LIMIT_EXCEEDED",
    concurrent ? "ConcurrentPerOrgLongTxn Limit exceeded." : "TotalRequests Limit exceeded.",
    headers,
  );

/**
 * Answers one request the way Salesforce's REST API would, faults and limits included.
 * Transport-independent: the testkit's MSW handlers and the loopback server both call it.
 */
export const handleSalesforceRequest = async (
  state: SalesforceApiState,
  request: FakeHttpRequest,
): Promise<FakeHttpResponse> => {
  const path = `${request.url.pathname}${request.url.search}`;
  const soql = request.url.searchParams.get("q") ?? undefined;
  const answer = (response: FakeHttpResponse) => {
    state.requestLog.push({
      method: request.method.toUpperCase(),
      path,
      status: response.status,
      ...(soql !== undefined ? { soql } : {}),
    });
    return response;
  };
  if (state.knobs.latencyMs > 0) await sleep(state, state.knobs.latencyMs, request.signal);
  if (request.url.pathname === "/services/oauth2/token" && request.method.toUpperCase() === "POST") {
    return answer(issueToken(state, request));
  }
  const limitInfo = () => ({ "sforce-limit-info": `api-usage=${state.counters.apiUsage}/${state.knobs.apiLimit}` });
  const fault = drawFault(state);
  if (fault?.kind === "hang") {
    await sleep(state, state.knobs.hangMs, request.signal);
    return answer(error(503, "SERVER_UNAVAILABLE", "Server unavailable"));
  }
  if (fault?.kind === "status") {
    return answer(
      error(fault.status, statusErrorCodes[fault.status] ?? "UNKNOWN_EXCEPTION", `fault injected: ${fault.status}`, {
        ...limitInfo(),
        ...(fault.retryAfterSeconds !== undefined ? { "retry-after": String(fault.retryAfterSeconds) } : {}),
      }),
    );
  }
  const header = request.headers.get("authorization") ?? "";
  const token = /^(?:Bearer|OAuth) (.+)$/.exec(header)?.[1]?.trim() ?? "";
  if (fault?.kind === "sessionExpired" || state.sessions.get(token) !== true) {
    return answer(
      error(401, "INVALID_SESSION_ID", "Session expired or invalid", {
        "www-authenticate": 'Token realm="Salesforce"',
      }),
    );
  }
  if (fault?.kind === "requestLimit") return answer(requestLimitExceeded(fault.concurrent === true, limitInfo()));
  if (state.knobs.enforceApiLimit && state.counters.apiUsage >= state.knobs.apiLimit) {
    return answer(requestLimitExceeded(false, limitInfo()));
  }
  state.counters.apiUsage++;
  const response = route(state, request);
  return answer({ ...response, headers: { ...limitInfo(), ...response.headers } });
};
