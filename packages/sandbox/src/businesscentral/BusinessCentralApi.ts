import { randomUUID } from "node:crypto";
import type { FakeClock } from "../hubspot/FakeClock.ts";
import type { FakeHttpRequest, FakeHttpResponse } from "../hubspot/HubSpotApi.ts";
import type { BusinessCentralFakeKnobs, BusinessCentralFault } from "./BusinessCentralFaults.ts";
import {
  type BusinessCentralEntitySet,
  type BusinessCentralFailure,
  type BusinessCentralStore,
  businessCentralSchemas,
  type StoredBusinessCentralRecord,
} from "./BusinessCentralStore.ts";

/** An app registration (client credentials) the fake's token endpoint accepts. */
export interface BusinessCentralApp {
  readonly clientId: string;
  readonly clientSecret: string;
}

/** A webhook subscription as the fake keeps it. */
export interface BusinessCentralSubscription {
  readonly subscriptionId: string;
  notificationUrl: string;
  readonly resource: string;
  clientState: string;
  expirationDateTime: number;
  lastModifiedAt: number;
  version: number;
}

/** One notification of a delivery's `value` array. */
export interface BusinessCentralNotification {
  readonly subscriptionId: string;
  readonly clientState: string;
  readonly expirationDateTime: string;
  readonly resource: string;
  readonly changeType: "created" | "updated" | "deleted" | "collection";
  readonly lastModifiedDateTime: string;
}

/** Everything the API layer reads and mutates; owned by the fake (see createBusinessCentralFake). */
export interface BusinessCentralApiState {
  readonly store: BusinessCentralStore;
  readonly clock: FakeClock;
  readonly knobs: BusinessCentralFakeKnobs;
  readonly random: () => number;
  readonly tenantId: string;
  readonly environment: string;
  readonly companyId: string;
  readonly apps: Array<BusinessCentralApp>;
  /** Access tokens issued, with their app and expiry (epoch ms on the fake's clock). */
  readonly issuedTokens: Map<string, { readonly clientId: string; expiresAt: number }>;
  readonly accessTokenTtlSeconds: number;
  readonly queuedFaults: Array<BusinessCentralFault>;
  readonly callTimes: Array<number>;
  /** Every request, with the number of operations of a $batch (one entry per $batch, as BC counts it one request). */
  readonly requestLog: Array<{
    readonly method: string;
    readonly url: string;
    readonly status: number;
    readonly operations?: number;
  }>;
  readonly subscriptions: Map<string, BusinessCentralSubscription>;
  /** Notifications waiting for the next delivery, per subscription id. */
  readonly pendingNotifications: Map<string, Array<BusinessCentralNotification>>;
  /** Sends the handshake and deliveries (default globalThis.fetch, so MSW intercepts them). */
  readonly fetch: typeof fetch;
}

/** The scope a client-credentials token for Business Central must ask for. */
export const businessCentralScope = "https://api.businesscentral.dynamics.com/.default";

/** How long a subscription lives before it must be renewed (BC: three days). */
export const subscriptionLifetimeMs = 3 * 24 * 60 * 60 * 1000;

const iso = (ms: number) => new Date(ms).toISOString();

const json = (status: number, body: unknown, headers: Record<string, string> = {}): FakeHttpResponse => ({
  status,
  headers: { "content-type": "application/json; odata.metadata=minimal", ...headers },
  body,
});

/** BC's error envelope; its messages end with a correlation id. */
const error = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
  json(status, { error: { code, message: `${message}  CorrelationId:  ${randomUUID()}.` } }, headers);

const failed = (failure: BusinessCentralFailure) => error(failure.status, failure.code, failure.message);

/** The weak etag BC sends: `W/"<base64 of 'version;id'>"` (opaque to clients). */
export const businessCentralEtag = (id: string, version: number, prefix = "") =>
  `W/"${Buffer.from(`'${prefix}${version};${id}'`).toString("base64")}"`;

const guidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const wire = (state: BusinessCentralApiState, record: StoredBusinessCentralRecord, select?: ReadonlyArray<string>) => {
  const full: Record<string, unknown> = {
    "@odata.etag": businessCentralEtag(record.id, record.version),
    id: record.id,
    ...record.fields,
    lastModifiedDateTime: iso(record.lastModifiedAt),
  };
  if (state.knobs.malformedIds.has(record.id)) full.lastModifiedDateTime = "yesterday at noon";
  if (select === undefined) return full;
  const picked: Record<string, unknown> = { "@odata.etag": full["@odata.etag"] };
  for (const name of select) picked[name] = full[name];
  return picked;
};

/* ------------------------------------------------------------------------------------------------
 * Microsoft identity platform: the client-credentials grant.
 * https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
 * --------------------------------------------------------------------------------------------- */

const identityError = (status: number, error: string, code: number, description: string) =>
  json(status, {
    error,
    error_description: `AADSTS${code}: ${description} Trace ID: ${randomUUID()} Correlation ID: ${randomUUID()} Timestamp: ${new Date().toISOString()}`,
    error_codes: [code],
    timestamp: new Date().toISOString(),
    trace_id: randomUUID(),
    correlation_id: randomUUID(),
  });

/** `POST {authority}/{tenantId}/oauth2/v2.0/token` (form encoded). */
export const issueBusinessCentralToken = (state: BusinessCentralApiState, tenant: string, body: string) => {
  if (tenant !== state.tenantId) {
    return identityError(400, "invalid_request", 90002, `Tenant '${tenant}' not found.`);
  }
  const form = new URLSearchParams(body);
  if (form.get("grant_type") !== "client_credentials") {
    return identityError(
      400,
      "unsupported_grant_type",
      70003,
      "The app requested an unsupported grant type; this fake serves client_credentials.",
    );
  }
  const app = state.apps.find((a) => a.clientId === form.get("client_id"));
  if (app === undefined) {
    return identityError(
      400,
      "unauthorized_client",
      700016,
      `Application with identifier '${form.get("client_id")}' was not found in the directory.`,
    );
  }
  if (app.clientSecret !== form.get("client_secret")) {
    return identityError(401, "invalid_client", 7000215, "Invalid client secret provided.");
  }
  if (form.get("scope") !== businessCentralScope) {
    return identityError(
      400,
      "invalid_scope",
      1002012,
      `The provided value for scope ${form.get("scope")} is not valid.`,
    );
  }
  const accessToken = `fake-bc-${randomUUID()}`;
  state.issuedTokens.set(accessToken, {
    clientId: app.clientId,
    expiresAt: state.clock.now() + state.accessTokenTtlSeconds * 1000,
  });
  return json(200, {
    token_type: "Bearer",
    expires_in: state.accessTokenTtlSeconds,
    ext_expires_in: state.accessTokenTtlSeconds,
    access_token: accessToken,
  });
};

const unauthorized = () =>
  error(401, "Authentication_InvalidCredentials", "The server has rejected the client credentials.", {
    "www-authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize"',
  });

const authenticate = (state: BusinessCentralApiState, request: FakeHttpRequest) => {
  const header = request.headers.get("authorization") ?? "";
  const token = header.startsWith("Bearer ") ? header.slice("Bearer ".length).trim() : "";
  const issued = state.issuedTokens.get(token);
  return issued !== undefined && issued.expiresAt > state.clock.now() ? issued.clientId : undefined;
};

/* ------------------------------------------------------------------------------------------------
 * Faults and limits.
 * --------------------------------------------------------------------------------------------- */

const drawFault = (state: BusinessCentralApiState): BusinessCentralFault | undefined => {
  const queued = state.queuedFaults.shift();
  if (queued !== undefined) return queued;
  if (state.knobs.serverErrorRate > 0 && state.random() < state.knobs.serverErrorRate) {
    const statuses = [500, 502, 503, 504];
    return { kind: "status", status: statuses[Math.floor(state.random() * statuses.length)]! };
  }
  return undefined;
};

const rateLimited = (retryAfterSeconds: number | undefined) =>
  error(
    429,
    "Application_TooManyRequests",
    "Too many requests reached. Actual (6001). Maximum (6000).",
    retryAfterSeconds === undefined ? {} : { "retry-after": String(retryAfterSeconds) },
  );

const serveFault = (fault: BusinessCentralFault) => {
  if (fault.kind === "rateLimit") return rateLimited(fault.retryAfterSeconds);
  if (fault.status === 401) return unauthorized();
  return error(
    fault.status,
    fault.status === 503 ? "ServiceUnavailable" : "InternalServerError",
    fault.status === 503 ? "The service is temporarily unavailable." : "An unexpected error occurred.",
  );
};

/** Counts the call against the per-user window; a 429 with Retry-After once it is spent. */
const admit = (state: BusinessCentralApiState): FakeHttpResponse | undefined => {
  const limit = state.knobs.rateLimit;
  if (limit === undefined) return undefined;
  const now = state.clock.now();
  while (state.callTimes.length > 0 && state.callTimes[0]! <= now - limit.windowMs) state.callTimes.shift();
  if (state.callTimes.length >= limit.max) {
    return rateLimited(Math.max(1, Math.ceil((state.callTimes[0]! + limit.windowMs - now) / 1000)));
  }
  state.callTimes.push(now);
  return undefined;
};

/* ------------------------------------------------------------------------------------------------
 * OData queries: $filter on lastModifiedDateTime, $select, $orderby, $top/$skip, server paging.
 * https://learn.microsoft.com/dynamics365/business-central/dev-itpro/webservices/use-filter-expressions-in-odata-uris
 * https://learn.microsoft.com/dynamics365/business-central/dev-itpro/webservices/server-driven-paging-in-odata-web-services
 * --------------------------------------------------------------------------------------------- */

type Comparison = "gt" | "ge" | "lt" | "le" | "eq";
interface Bound {
  readonly operator: Comparison;
  readonly at: number;
}

const parseFilter = (filter: string | null): ReadonlyArray<Bound> | { readonly error: string } => {
  if (filter === null || filter.trim() === "") return [];
  const bounds: Array<Bound> = [];
  for (const clause of filter.trim().split(/\s+and\s+/i)) {
    const match = /^lastModifiedDateTime\s+(gt|ge|lt|le|eq)\s+(\S+)$/i.exec(clause.trim());
    const at = match === null ? Number.NaN : Date.parse(match[2]!);
    if (match === null || Number.isNaN(at)) {
      return { error: `The fake supports $filter on lastModifiedDateTime only (gt, ge, lt, le, eq); got '${clause}'.` };
    }
    bounds.push({ operator: match[1]!.toLowerCase() as Comparison, at });
  }
  return bounds;
};

const passes = (bounds: ReadonlyArray<Bound>, at: number) =>
  bounds.every(({ operator, at: bound }) =>
    operator === "gt"
      ? at > bound
      : operator === "ge"
        ? at >= bound
        : operator === "lt"
          ? at < bound
          : operator === "le"
            ? at <= bound
            : at === bound,
  );

/** `Prefer: odata.maxpagesize=N` (several preferences may share the header). */
const preferredPageSize = (request: FakeHttpRequest): number | undefined => {
  const match = /odata\.maxpagesize=(\d+)/i.exec(request.headers.get("prefer") ?? "");
  return match === null ? undefined : Number(match[1]);
};

/** A list's sort key: the primary key (number), or modification time then number. */
type SortKey = readonly [number | string, string];
const keyOf = (record: StoredBusinessCentralRecord, byModification: boolean): SortKey =>
  byModification ? [record.lastModifiedAt, String(record.fields.number)] : ["", String(record.fields.number)];
const compareKeys = (a: SortKey, b: SortKey) =>
  a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;

/**
 * A `$skiptoken` holds the sort key of the page's last entity (by default), or, with
 * `knobs.skipTokenNames: "lastEntity"`, only that entity's id: the next page then starts after
 * where that entity sorts now, which moves when it is edited between the two pages. BC does not
 * document what its token holds under `$orderby`; the knob lets a test hold a reader to both.
 */
type SkipToken = { readonly key: SortKey } | { readonly id: string };
const encodeSkipToken = (token: SkipToken) =>
  Buffer.from(JSON.stringify("id" in token ? { id: token.id } : token.key)).toString("base64url");
const decodeSkipToken = (token: string): SkipToken | undefined => {
  try {
    const decoded = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (Array.isArray(decoded) && decoded.length === 2) return { key: decoded as unknown as SortKey };
    return typeof decoded?.id === "string" ? { id: decoded.id } : undefined;
  } catch {
    return undefined;
  }
};

const listRecords = (
  state: BusinessCentralApiState,
  entitySet: BusinessCentralEntitySet,
  request: FakeHttpRequest,
): FakeHttpResponse => {
  const params = request.url.searchParams;
  const bounds = parseFilter(params.get("$filter"));
  if ("error" in bounds) return error(400, "BadRequest", bounds.error);
  const orderBy = (params.get("$orderby") ?? "").trim().replace(/\s+asc$/i, "");
  if (orderBy !== "" && orderBy !== "number" && orderBy !== "lastModifiedDateTime") {
    return error(
      400,
      "BadRequest",
      `The fake supports $orderby number or lastModifiedDateTime (ascending); got '${orderBy}'.`,
    );
  }
  const byModification = orderBy === "lastModifiedDateTime";
  const selectParam = params.get("$select");
  const select = selectParam === null ? undefined : selectParam.split(",").map((s) => s.trim());
  const schema = businessCentralSchemas[entitySet];
  const known = new Set(["id", "lastModifiedDateTime", ...Object.keys(schema.writable), ...schema.readOnly]);
  const unknown = select?.find((name) => !known.has(name));
  if (unknown !== undefined) {
    return error(
      400,
      "BadRequest",
      `Could not find a property named '${unknown}' on type 'Microsoft.NAV.${entitySet}'.`,
    );
  }
  const top = params.has("$top") ? Number(params.get("$top")) : undefined;
  const skip = params.has("$skip") ? Number(params.get("$skip")) : 0;
  if ((top !== undefined && (!Number.isInteger(top) || top < 0)) || !Number.isInteger(skip) || skip < 0) {
    return error(400, "BadRequest", "$top and $skip must be non-negative integers.");
  }
  const skipToken = params.get("$skiptoken");
  const token = skipToken === null ? undefined : decodeSkipToken(skipToken);
  const named = token !== undefined && "id" in token ? state.store.get(entitySet, token.id) : undefined;
  const after = token === undefined ? undefined : "key" in token ? token.key : named && keyOf(named, byModification);
  if (skipToken !== null && after === undefined)
    return error(400, "BadRequest_InvalidToken", "The skip token is invalid.");

  const matching = state.store
    .all(entitySet)
    .filter((record) => passes(bounds, record.lastModifiedAt))
    .map((record) => ({ record, key: keyOf(record, byModification) }))
    .sort((a, b) => compareKeys(a.key, b.key));
  const remaining = (after === undefined ? matching : matching.filter((m) => compareKeys(m.key, after) > 0)).slice(
    skip,
  );
  const preferred = preferredPageSize(request);
  const pageSize = Math.min(preferred ?? state.knobs.maxPageSize, state.knobs.maxPageSize);
  const limit = top === undefined ? pageSize : Math.min(top, pageSize);
  const page = remaining.slice(0, limit);
  const more = remaining.length > page.length && (top === undefined || top > page.length);

  const body: Record<string, unknown> = {
    "@odata.context": `${request.url.origin}/v2.0/${state.tenantId}/${state.environment}/api/v2.0/$metadata#companies(${state.companyId})/${entitySet}${select === undefined ? "" : `(${select.join(",")})`}`,
    value: page.map(({ record }) => wire(state, record, select)),
  };
  if (more && page.length > 0) {
    // The request's query as sent (BC keeps `$` literal in its links), minus the paging options.
    const kept = request.url.search
      .slice(1)
      .split("&")
      .filter(
        (part) => part !== "" && !["$skip", "$skiptoken", "$top"].includes(decodeURIComponent(part.split("=")[0]!)),
      );
    const last = page.at(-1)!;
    kept.push(
      `$skiptoken=${encodeSkipToken(state.knobs.skipTokenNames === "lastEntity" ? { id: last.record.id } : { key: last.key })}`,
    );
    if (top !== undefined) kept.push(`$top=${top - page.length}`);
    body["@odata.nextLink"] = `${request.url.origin}${request.url.pathname}?${kept.join("&")}`;
  }
  return json(200, body, preferred === undefined ? {} : { "preference-applied": `odata.maxpagesize=${pageSize}` });
};

/* ------------------------------------------------------------------------------------------------
 * Single entities and writes.
 * --------------------------------------------------------------------------------------------- */

const parseBody = (request: FakeHttpRequest): { value: Record<string, unknown> } | { error: FakeHttpResponse } => {
  try {
    const value = request.body === "" ? {} : JSON.parse(request.body);
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
    // Clients may echo OData annotations back; BC ignores them.
    return {
      value: Object.fromEntries(
        Object.entries(value as Record<string, unknown>).filter(([k]) => !k.startsWith("@odata.")),
      ),
    };
  } catch {
    return { error: error(400, "BadRequest", "Invalid Request Body") };
  }
};

const recordNotFound = (entitySet: BusinessCentralEntitySet, id: string) =>
  error(
    404,
    "Internal_RecordNotFound",
    `The ${businessCentralSchemas[entitySet].entityName} does not exist. Identification fields and values: Id='${id}'`,
  );

/**
 * `If-Match` as BC checks it on PATCH and DELETE: required (400 BadRequest_InvalidToken when
 * missing), `*` matches anything, any other tag must be the current one (409 Request_EntityChanged).
 */
const preconditionFailure = (request: FakeHttpRequest, etag: string): FakeHttpResponse | undefined => {
  const ifMatch = request.headers.get("if-match");
  if (ifMatch === null || ifMatch.trim() === "") {
    return error(
      400,
      "BadRequest_InvalidToken",
      "Could not validate the client concurrency token required by the service. Please provide a valid token in the client request.",
    );
  }
  if (ifMatch.trim() === "*" || ifMatch.trim() === etag) return undefined;
  return error(409, "Request_EntityChanged", "Another user has already changed the record.");
};

const entityRoute = (
  state: BusinessCentralApiState,
  method: string,
  entitySet: BusinessCentralEntitySet,
  key: string | undefined,
  request: FakeHttpRequest,
): FakeHttpResponse => {
  if (key === undefined) {
    if (method === "GET") return listRecords(state, entitySet, request);
    if (method !== "POST")
      return error(405, "BadRequest_MethodNotAllowed", `'${method}' is not allowed on this resource.`);
    const parsed = parseBody(request);
    if ("error" in parsed) return parsed.error;
    const outcome = state.store.create(entitySet, parsed.value);
    if ("failure" in outcome) return failed(outcome.failure);
    return json(201, wire(state, outcome.record));
  }
  if (!guidPattern.test(key)) {
    return error(400, "BadRequest_InvalidToken", `Invalid key '${key}': expected a GUID.`);
  }
  const record = state.store.get(entitySet, key);
  if (record === undefined) return recordNotFound(entitySet, key);
  const etag = businessCentralEtag(record.id, record.version);
  switch (method) {
    case "GET":
      return json(200, wire(state, record));
    case "PATCH": {
      const refused = preconditionFailure(request, etag);
      if (refused !== undefined) return refused;
      const parsed = parseBody(request);
      if ("error" in parsed) return parsed.error;
      const outcome = state.store.update(entitySet, record.id, parsed.value);
      if ("failure" in outcome) return failed(outcome.failure);
      return json(200, wire(state, outcome.record));
    }
    case "DELETE": {
      const refused = preconditionFailure(request, etag);
      if (refused !== undefined) return refused;
      state.store.remove(entitySet, record.id);
      return { status: 204, headers: {} };
    }
    default:
      return error(405, "BadRequest_MethodNotAllowed", `'${method}' is not allowed on this resource.`);
  }
};

/* ------------------------------------------------------------------------------------------------
 * Webhook subscriptions.
 * https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/dynamics-subscriptions
 * --------------------------------------------------------------------------------------------- */

const subscriptionWire = (subscription: BusinessCentralSubscription) => ({
  "@odata.etag": businessCentralEtag(subscription.subscriptionId, subscription.version, "s"),
  subscriptionId: subscription.subscriptionId,
  notificationUrl: subscription.notificationUrl,
  resource: subscription.resource,
  userId: "00000000-0000-0000-0000-000000000001",
  lastModifiedDateTime: iso(subscription.lastModifiedAt),
  clientState: subscription.clientState,
  expirationDateTime: iso(subscription.expirationDateTime),
});

/** The entity set a subscription resource names: `/api/v2.0/companies({companyId})/{items|customers}`. */
const subscribedEntitySet = (state: BusinessCentralApiState, resource: string) => {
  const match = /^\/?api\/v2\.0\/companies\(([^)]+)\)\/(items|customers)$/.exec(resource);
  return match === null || match[1]!.toLowerCase() !== state.companyId.toLowerCase()
    ? undefined
    : (match[2] as BusinessCentralEntitySet);
};

/** BC calls `notificationUrl?validationToken=...` and expects the token echoed with 200. */
const handshake = async (state: BusinessCentralApiState, notificationUrl: string): Promise<boolean> => {
  const token = randomUUID();
  const url = new URL(notificationUrl);
  url.searchParams.set("validationToken", token);
  try {
    const response = await state.fetch(url, { method: state.knobs.handshakeMethod });
    return response.status === 200 && (await response.text()).trim() === token;
  } catch {
    return false;
  }
};

const subscriptionRoute = async (
  state: BusinessCentralApiState,
  method: string,
  key: string | undefined,
  request: FakeHttpRequest,
): Promise<FakeHttpResponse> => {
  if (key === undefined) {
    if (method === "GET") return json(200, { value: [...state.subscriptions.values()].map(subscriptionWire) });
    if (method !== "POST")
      return error(405, "BadRequest_MethodNotAllowed", `'${method}' is not allowed on this resource.`);
    const parsed = parseBody(request);
    if ("error" in parsed) return parsed.error;
    const { notificationUrl, resource, clientState } = parsed.value;
    if (typeof notificationUrl !== "string" || typeof resource !== "string") {
      return error(400, "BadRequest", "notificationUrl and resource are required.");
    }
    if (subscribedEntitySet(state, resource) === undefined) {
      return error(400, "BadRequest_ResourceNotFound", `The resource '${resource}' cannot be subscribed to.`);
    }
    if (clientState !== undefined && (typeof clientState !== "string" || clientState.length > 2048)) {
      return error(400, "BadRequest", "clientState must be a string of at most 2048 characters.");
    }
    if (!(await handshake(state, notificationUrl))) {
      return error(
        400,
        "BadRequest_InvalidRequestBody",
        `The handshake with the notificationUrl '${notificationUrl}' failed.`,
      );
    }
    const now = state.clock.now();
    const subscription: BusinessCentralSubscription = {
      subscriptionId: randomUUID().replaceAll("-", ""),
      notificationUrl,
      resource,
      clientState: clientState ?? "",
      expirationDateTime: now + subscriptionLifetimeMs,
      lastModifiedAt: now,
      version: 1,
    };
    state.subscriptions.set(subscription.subscriptionId, subscription);
    return json(201, subscriptionWire(subscription));
  }
  const subscription = state.subscriptions.get(key);
  if (subscription === undefined || subscription.expirationDateTime <= state.clock.now()) {
    return error(404, "BadRequest_NotFound", `The subscription '${key}' does not exist.`);
  }
  const etag = businessCentralEtag(subscription.subscriptionId, subscription.version, "s");
  if (method === "GET") return json(200, subscriptionWire(subscription));
  if (method === "DELETE") {
    const refused = preconditionFailure(request, etag);
    if (refused !== undefined) return refused;
    state.subscriptions.delete(key);
    state.pendingNotifications.delete(key);
    return { status: 204, headers: {} };
  }
  if (method === "PATCH") {
    // A PATCH renews the subscription for three more days; it repeats the handshake.
    const refused = preconditionFailure(request, etag);
    if (refused !== undefined) return refused;
    const parsed = parseBody(request);
    if ("error" in parsed) return parsed.error;
    const { notificationUrl, clientState } = parsed.value;
    const url = typeof notificationUrl === "string" ? notificationUrl : subscription.notificationUrl;
    if (!(await handshake(state, url))) {
      return error(400, "BadRequest_InvalidRequestBody", `The handshake with the notificationUrl '${url}' failed.`);
    }
    const now = state.clock.now();
    subscription.notificationUrl = url;
    if (typeof clientState === "string") subscription.clientState = clientState;
    subscription.expirationDateTime = now + subscriptionLifetimeMs;
    subscription.lastModifiedAt = now;
    subscription.version++;
    return json(200, subscriptionWire(subscription));
  }
  return error(405, "BadRequest_MethodNotAllowed", `'${method}' is not allowed on this resource.`);
};

/** Queues a notification for every live subscription to the changed entity set. */
export const queueBusinessCentralNotifications = (
  state: BusinessCentralApiState,
  change: {
    readonly entitySet: BusinessCentralEntitySet;
    readonly id: string;
    readonly changeType: "created" | "updated" | "deleted";
    readonly at: number;
  },
) => {
  for (const subscription of state.subscriptions.values()) {
    if (subscription.expirationDateTime <= change.at) continue;
    if (subscribedEntitySet(state, subscription.resource) !== change.entitySet) continue;
    const queue = state.pendingNotifications.get(subscription.subscriptionId) ?? [];
    queue.push({
      subscriptionId: subscription.subscriptionId,
      clientState: subscription.clientState,
      expirationDateTime: iso(subscription.expirationDateTime),
      resource: `${subscription.resource.replace(/^\/?/, "/")}(${change.id})`,
      changeType: change.changeType,
      lastModifiedDateTime: iso(change.at),
    });
    state.pendingNotifications.set(subscription.subscriptionId, queue);
  }
};

/* ------------------------------------------------------------------------------------------------
 * Routing.
 * --------------------------------------------------------------------------------------------- */

/** `name(key)` or `name('key')` -> [name, key]; `name` -> [name, undefined]. */
const segmentOf = (segment: string): readonly [string, string | undefined] => {
  const match = /^([A-Za-z]+)(?:\('?([^')]*)'?\))?$/.exec(decodeURIComponent(segment));
  return match === null ? [segment, undefined] : [match[1]!, match[2]];
};

const route = async (state: BusinessCentralApiState, request: FakeHttpRequest): Promise<FakeHttpResponse> => {
  const method = request.method.toUpperCase();
  const segments = request.url.pathname.split("/").filter((s) => s !== "");
  const notFound = () =>
    error(404, "BadRequest_ResourceNotFound", `Resource not found for the segment '${request.url.pathname}'.`);
  const [version, tenant, environment, api, apiVersion, ...rest] = segments;
  if (version !== "v2.0" || api !== "api" || apiVersion !== "v2.0") return notFound();
  if (tenant !== state.tenantId) return unauthorized();
  if (environment !== state.environment) {
    return error(404, "NoEnvironment", `Environment '${environment}' for tenant '${tenant}' does not exist.`);
  }
  if (rest.length === 1 && rest[0] === "$batch") {
    if (method !== "POST") return error(405, "BadRequest_MethodNotAllowed", `'${method}' is not allowed on $batch.`);
    return batchRoute(state, request);
  }
  const [first, second, ...extra] = rest.map(segmentOf);
  if (first === undefined || extra.length > 0) return notFound();
  if (first[0] === "subscriptions" && second === undefined) return subscriptionRoute(state, method, first[1], request);
  if (first[0] !== "companies" || first[1] === undefined) return notFound();
  if (first[1].toLowerCase() !== state.companyId.toLowerCase()) {
    return error(404, "BadRequest_ResourceNotFound", `Cannot find the company '${first[1]}'.`);
  }
  if (second === undefined) {
    if (method !== "GET") return notFound();
    return json(200, {
      id: state.companyId,
      name: "CRONUS USA, Inc.",
      displayName: "CRONUS USA, Inc.",
      businessProfileId: "",
    });
  }
  const [entitySet, key] = second;
  if (entitySet !== "items" && entitySet !== "customers") return notFound();
  return entityRoute(state, method, entitySet, key, request);
};

/* ------------------------------------------------------------------------------------------------
 * $batch: many operations in one request (OData's JSON batch format).
 * https://learn.microsoft.com/dynamics365/business-central/dev-itpro/developer/devenv-connect-apps-tips#batch
 * --------------------------------------------------------------------------------------------- */

/** Operations one $batch request may carry (BC's limit). */
export const businessCentralBatchMax = 100;

interface BatchOperation {
  readonly id?: unknown;
  readonly method?: unknown;
  readonly url?: unknown;
  readonly headers?: unknown;
  readonly body?: unknown;
  readonly atomicityGroup?: unknown;
}

/**
 * `POST .../api/v2.0/$batch` with `{ requests: [{ id, method, url, headers?, body? }] }`: each
 * operation is answered as the same request alone would be (its own `If-Match` included), in
 * `{ responses: [{ id, status, headers, body? }] }`, 200 overall. URLs are relative to the API root
 * (`companies({id})/items({id})`) or absolute. Without `Isolation: snapshot` every operation
 * stands alone: one failing leaves the others done. The fake serves JSON batches only (not
 * multipart), and neither `Isolation: snapshot` nor `atomicityGroup` (400 for both).
 * (unverified) the error code BC answers past 100 operations.
 */
const batchRoute = async (state: BusinessCentralApiState, request: FakeHttpRequest): Promise<FakeHttpResponse> => {
  if (!(request.headers.get("content-type") ?? "").includes("application/json")) {
    return error(400, "BadRequest", "The fake serves JSON batches only: send Content-Type: application/json.");
  }
  if (request.headers.get("isolation") !== null) {
    return error(400, "BadRequest", "The fake does not serve transactional batches (Isolation: snapshot).");
  }
  let requests: unknown;
  try {
    requests = (JSON.parse(request.body) as { requests?: unknown }).requests;
  } catch {
    return error(400, "BadRequest", "Invalid Request Body");
  }
  if (!Array.isArray(requests) || requests.length === 0) {
    return error(400, "BadRequest", "The batch request must have a non-empty 'requests' array.");
  }
  if (requests.length > businessCentralBatchMax) {
    return error(
      400,
      "BadRequest",
      `The batch request has ${requests.length} operations; at most ${businessCentralBatchMax} are allowed.`,
    );
  }
  if ((requests as ReadonlyArray<BatchOperation>).some((op) => op?.atomicityGroup !== undefined)) {
    return error(400, "BadRequest", "The fake does not serve atomicity groups.");
  }
  const apiRoot = `${request.url.origin}/v2.0/${state.tenantId}/${state.environment}/api/v2.0/`;
  const responses: Array<Record<string, unknown>> = [];
  for (const op of requests as ReadonlyArray<BatchOperation>) {
    const id = typeof op?.id === "string" ? op.id : String(op?.id ?? "");
    if (typeof op?.method !== "string" || typeof op.url !== "string") {
      const refused = error(400, "BadRequest", "An operation needs a method and a url.");
      responses.push({ id, status: refused.status, headers: refused.headers, body: refused.body });
      continue;
    }
    const headers = new Headers({ authorization: request.headers.get("authorization") ?? "" });
    for (const [name, value] of Object.entries((op.headers ?? {}) as Record<string, string>)) headers.set(name, value);
    const answer = await route(state, {
      method: op.method,
      url: new URL(op.url, apiRoot),
      headers,
      body: op.body === undefined ? "" : JSON.stringify(op.body),
    });
    responses.push({
      id,
      status: answer.status,
      headers: answer.headers,
      ...(answer.body !== undefined ? { body: answer.body } : {}),
    });
  }
  return json(200, { responses });
};

/**
 * Answers one API request the way Business Central API v2.0 would, faults and limits included.
 * Transport-independent: the testkit's MSW handlers and the loopback server both call it.
 */
export const handleBusinessCentralRequest = async (
  state: BusinessCentralApiState,
  request: FakeHttpRequest,
): Promise<FakeHttpResponse> => {
  const answer = (response: FakeHttpResponse) => {
    const operations = (response.body as { responses?: ReadonlyArray<unknown> } | undefined)?.responses?.length;
    state.requestLog.push({
      method: request.method.toUpperCase(),
      url: request.url.toString(),
      status: response.status,
      ...(request.url.pathname.endsWith("/$batch") && operations !== undefined ? { operations } : {}),
    });
    return response;
  };
  const fault = drawFault(state);
  if (fault !== undefined) return answer(serveFault(fault));
  if (authenticate(state, request) === undefined) return answer(unauthorized());
  const limited = admit(state);
  if (limited !== undefined) return answer(limited);
  return answer(await route(state, request));
};

/** Answers a token request; logged with the API calls (faults never apply to it). */
export const handleBusinessCentralTokenRequest = (
  state: BusinessCentralApiState,
  request: FakeHttpRequest,
  tenant: string,
): FakeHttpResponse => {
  const response = issueBusinessCentralToken(state, tenant, request.body);
  state.requestLog.push({ method: "POST", url: request.url.toString(), status: response.status });
  return response;
};
