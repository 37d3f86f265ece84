import { Schema } from "effect";

/*
 * Salesforce's REST wire shapes, kept apart from the normalized records in ./entities.
 * Reference: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_rest.htm
 */

/**
 * `GET /services/data/vNN.0/query?q=` and its `nextRecordsUrl` pages. Records stay `Unknown`:
 * each is mapped on its own so one malformed record never fails its page.
 * See https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_query.htm
 */
export const QueryPageWire = Schema.Struct({
  totalSize: Schema.Number,
  done: Schema.Boolean,
  records: Schema.Array(Schema.Unknown),
  nextRecordsUrl: Schema.optional(Schema.String),
});

/** Errors come as a JSON array, `[{ message, errorCode, fields? }]`. */
export const ErrorsWire = Schema.Array(
  Schema.Struct({
    message: Schema.String,
    errorCode: Schema.String,
    fields: Schema.optional(Schema.Array(Schema.String)),
    /** `DUPLICATES_DETECTED`: the duplicate rule's matches. */
    duplicateResult: Schema.optional(Schema.Unknown),
  }),
);
export type ErrorsWire = typeof ErrorsWire.Type;

/** `POST /sobjects/{Object}` -> 201. */
export const CreateResultWire = Schema.Struct({
  id: Schema.String,
  success: Schema.Boolean,
  errors: Schema.Array(Schema.Unknown),
});

/**
 * `POST /services/oauth2/token` (refresh-token grant). No `expires_in`: a session lasts until
 * the org's session timeout or a revocation, so the client refreshes on 401.
 * See https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm
 */
export const TokenWire = Schema.Struct({
  access_token: Schema.String,
  instance_url: Schema.String.pipe(Schema.pattern(/^https?:\/\//)),
  /** Only from a connected app with refresh token rotation: the refresh token to use next time. */
  refresh_token: Schema.optional(Schema.String),
  id: Schema.optional(Schema.String),
  token_type: Schema.optional(Schema.String),
  issued_at: Schema.optional(Schema.String),
  signature: Schema.optional(Schema.String),
  scope: Schema.optional(Schema.String),
});

/** The token endpoint's refusals: `{ error: "invalid_grant", error_description }`. */
export const OAuthErrorWire = Schema.Struct({
  error: Schema.String,
  error_description: Schema.optional(Schema.String),
});

/** A query or sObject row: `attributes`, `Id`, the fields selected. */
export interface SObjectRow {
  readonly Id: string;
  readonly SystemModstamp: string;
  readonly IsDeleted?: boolean;
  readonly [field: string]: unknown;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** 15- or 18-character record ids (case-sensitive; the 18-character form adds a checksum). */
export const salesforceIdPattern = /^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$/;

/** A row with what every read needs: an id and a SystemModstamp; why not, otherwise. */
export const checkSObjectRow = (raw: unknown): { readonly ok: SObjectRow } | { readonly error: string } => {
  if (!isObject(raw)) return { error: "expected an object" };
  if (typeof raw.Id !== "string" || !salesforceIdPattern.test(raw.Id)) return { error: "Id must be a record id" };
  if (typeof raw.SystemModstamp !== "string") return { error: "SystemModstamp must be a string" };
  if (raw.IsDeleted !== undefined && typeof raw.IsDeleted !== "boolean")
    return { error: "IsDeleted must be a boolean" };
  return { ok: raw as unknown as SObjectRow };
};

const salesforceDateTimePattern = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)(Z|[+-]\d{2}:?\d{2})$/;

/**
 * REST datetimes look like `2021-12-02T18:25:26.000+0000`: ISO-8601 with a colon-less offset,
 * which `Date.parse` does not promise to read. Returns epoch ms, or undefined.
 */
export const parseSalesforceDateTime = (value: unknown): number | undefined => {
  if (typeof value !== "string") return undefined;
  const match = salesforceDateTimePattern.exec(value);
  if (match === null) return undefined;
  const zone = match[2] === "Z" ? "Z" : `${match[2]!.slice(0, 3)}:${match[2]!.slice(-2)}`;
  const ms = Date.parse(`${match[1]}${zone}`);
  return Number.isNaN(ms) ? undefined : ms;
};

/**
 * A REST datetime as ISO-8601 (`...Z`), as the normalized records encode dates; null stays null,
 * and anything unreadable is passed on unchanged for the record schema to reject.
 */
export const isoDateTime = (value: unknown): unknown => {
  if (value === null || value === undefined) return null;
  const ms = parseSalesforceDateTime(value);
  return ms === undefined ? value : new Date(ms).toISOString();
};

/** `Sforce-Limit-Info: api-usage=8688/15000`: the org's API calls in the last 24 hours and its limit. */
export const parseSforceLimitInfo = (
  header: string | null,
): { readonly used: number; readonly limit: number } | undefined => {
  const match = /api-usage=(\d+)\/(\d+)/.exec(header ?? "");
  return match === null ? undefined : { used: Number(match[1]), limit: Number(match[2]) };
};

/**
 * One record's result in an sObject Collections answer (create, update, delete), in the request's
 * order. Its errors carry `statusCode` where the single-record resources say `errorCode`.
 * See https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections.htm
 */
export const CollectionResultsWire = Schema.Array(
  Schema.Struct({
    id: Schema.optional(Schema.NullOr(Schema.String)),
    success: Schema.Boolean,
    errors: Schema.Array(
      Schema.Struct({
        statusCode: Schema.String,
        message: Schema.String,
        fields: Schema.optional(Schema.Array(Schema.String)),
        duplicateResult: Schema.optional(Schema.Unknown),
      }),
    ),
  }),
);
export type CollectionResultsWire = typeof CollectionResultsWire.Type;

/** `GET /composite/sobjects/{Object}?ids=&fields=`: the rows, null for ids not found (or deleted). */
export const CollectionRowsWire = Schema.Array(Schema.Unknown);

/**
 * `POST /composite`: one result per subrequest, `body` as the subrequest's own answer would be.
 * See https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_composite.htm
 */
export const CompositeResponseWire = Schema.Struct({
  compositeResponse: Schema.Array(
    Schema.Struct({
      body: Schema.optional(Schema.Unknown),
      httpStatusCode: Schema.Number,
      referenceId: Schema.String,
    }),
  ),
});
