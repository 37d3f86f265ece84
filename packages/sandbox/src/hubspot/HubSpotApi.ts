import { randomUUID } from "node:crypto";
import type { FakeClock } from "./FakeClock.ts";
import { corruptHubSpotObject, type HubSpotFakeKnobs, type HubSpotFault } from "./HubSpotFaults.ts";
import {
  type HubSpotFailure,
  type HubSpotObjectType,
  type HubSpotStore,
  hubSpotObjectSchemas,
  type StoredHubSpotObject,
} from "./HubSpotStore.ts";

/** A request as any transport (MSW, node:http) hands it to the fake. */
export interface FakeHttpRequest {
  readonly method: string;
  readonly url: URL;
  readonly headers: Headers;
  readonly body: string;
  /** Aborted when the client goes away; ends a hang early. */
  readonly signal?: AbortSignal;
}

/** The fake's answer; `body` is JSON-encoded by the transport unless it is undefined (204). */
export interface FakeHttpResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body?: unknown;
}

/** OAuth client credentials the fake's token endpoint accepts. */
export interface HubSpotOAuthApp {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly refreshToken: string;
}

/** Everything the API layer reads and mutates; owned by the fake (see createHubSpotFake). */
export interface HubSpotApiState {
  readonly store: HubSpotStore;
  readonly clock: FakeClock;
  readonly knobs: HubSpotFakeKnobs;
  readonly random: () => number;
  /** Private app tokens that authenticate. */
  readonly privateAppTokens: Set<string>;
  readonly oauthApps: Array<HubSpotOAuthApp>;
  /** Access tokens issued by the token endpoint, with their expiry (epoch ms). */
  readonly issuedTokens: Map<string, number>;
  /** OAuth access token lifetime in seconds (HubSpot: 1,800). */
  readonly accessTokenTtlSeconds: number;
  /** Faults served to the next calls, in order, before any random fault. */
  readonly queuedFaults: Array<HubSpotFault>;
  /** Times (fake clock) of the calls counted by the rate limiter. */
  readonly callTimes: Array<number>;
  /** Times (fake clock) of search calls, for search's own per-second limit. */
  readonly searchCallTimes: Array<number>;
  readonly daily: { count: number };
  /** Every request received (method and path with query), for assertions. */
  readonly requestLog: Array<{ readonly method: string; readonly path: string; readonly status: number }>;
  /** Timers of hanging calls, released when the fake closes. */
  readonly hangs: Set<() => void>;
  /**
   * Ids search never returns, whatever their modification time (see `HubSpotFake.hideFromSearch`):
   * HubSpot's search index lagging, or dropping an object, while the object itself is current.
   */
  readonly hiddenFromSearch: Set<string>;
}

/** HubSpot's list page size default (its cap, 100, is the `listMaxLimit` knob). */
const listDefaultLimit = 10;
/** Search: at most 200 a page (and `knobs.searchResultCap` results a query; paging past that is a 400). */
const searchMaxLimit = 200;
const batchMaxInputs = 100;
/** Nominal limits reported in headers when enforcement is off (Professional tier). */
const nominalWindow = { max: 190, intervalMs: 10_000 };
const nominalDaily = 650_000;

const json = (status: number, body: unknown, headers: Record<string, string> = {}): FakeHttpResponse => ({
  status,
  headers: { "content-type": "application/json;charset=utf-8", ...headers },
  body,
});

/** HubSpot's error envelope: `{ status: "error", message, correlationId, category, ... }`. */
const errorBody = (category: string, message: string, extra: Record<string, unknown> = {}) => ({
  status: "error",
  message,
  correlationId: randomUUID(),
  category,
  ...extra,
});

const failureStatus: Record<HubSpotFailure["category"], number> = {
  CONFLICT: 409,
  VALIDATION_ERROR: 400,
  OBJECT_NOT_FOUND: 404,
};

const failureResponse = (failure: HubSpotFailure) =>
  json(
    failureStatus[failure.category],
    errorBody(failure.category, failure.message, {
      ...(failure.errors ? { errors: failure.errors } : {}),
      ...(failure.context ? { context: failure.context } : {}),
    }),
  );

const validationError = (message: string) => json(400, errorBody("VALIDATION_ERROR", message));

const iso = (ms: number) => new Date(ms).toISOString();

/** Parses a filter value the way HubSpot does for dates: epoch milliseconds or ISO-8601. */
const comparableValue = (value: unknown): number | string => {
  if (typeof value === "number") return value;
  const text = String(value);
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  const date = Date.parse(text);
  return Number.isNaN(date) ? text : date;
};

const compare = (left: number | string, right: number | string): number =>
  typeof left === "number" && typeof right === "number"
    ? left - right
    : String(left) < String(right)
      ? -1
      : String(left) > String(right)
        ? 1
        : 0;

const objectTypeFromPath = (segment: string): HubSpotObjectType | undefined =>
  segment === "contacts" || segment === "0-1"
    ? "contacts"
    : segment === "companies" || segment === "0-2"
      ? "companies"
      : undefined;

/**
 * The property names a read returns: those requested (the type's defaults when none are), plus
 * the read-only ones HubSpot always adds; unknown names are left out. Worked out once per request.
 */
const wireProperties = (type: HubSpotObjectType, requested: ReadonlyArray<string> | undefined) => {
  const schema = hubSpotObjectSchemas[type];
  return [...new Set([...(requested ?? schema.defaults), ...schema.readOnly])].filter(
    (name) => schema.writable.includes(name) || schema.readOnly.includes(name),
  );
};

/** The wire form of an object with the requested properties (HubSpot always adds the timestamps and id). */
const toWire = (
  state: HubSpotApiState,
  type: HubSpotObjectType,
  object: StoredHubSpotObject,
  requested: ReadonlyArray<string> | undefined,
  maybeCorrupt: boolean,
): Record<string, unknown> => wireObject(state, object, wireProperties(type, requested), maybeCorrupt);

const wireObject = (
  state: HubSpotApiState,
  object: StoredHubSpotObject,
  names: ReadonlyArray<string>,
  maybeCorrupt: boolean,
): Record<string, unknown> => {
  const properties: Record<string, string | null> = {};
  for (const name of names) properties[name] = object.properties[name] ?? null;
  const wire: Record<string, unknown> = {
    id: object.id,
    properties,
    createdAt: iso(object.createdAt),
    updatedAt: iso(object.updatedAt),
    archived: object.archived,
    ...(object.archivedAt !== null ? { archivedAt: iso(object.archivedAt) } : {}),
  };
  if (!maybeCorrupt) return wire;
  const { knobs } = state;
  if (knobs.malformedIds.has(object.id) || (knobs.malformedRate > 0 && state.random() < knobs.malformedRate)) {
    return corruptHubSpotObject(wire, state.random());
  }
  return wire;
};

const parseProperties = (value: unknown): ReadonlyArray<string> | undefined => {
  if (Array.isArray(value)) return value.map(String);
  if (typeof value === "string" && value !== "") return value.split(",").map((p) => p.trim());
  return undefined;
};

const parseJsonBody = (request: FakeHttpRequest): { value: any } | { error: FakeHttpResponse } => {
  try {
    return { value: request.body === "" ? {} : JSON.parse(request.body) };
  } catch {
    return { error: validationError("Invalid input JSON on line 1: the body is not valid JSON") };
  }
};

const rateLimitHeaders = (state: HubSpotApiState, remaining: number): Record<string, string> => {
  const window = state.knobs.rateLimit ?? nominalWindow;
  const daily = state.knobs.dailyLimit ?? nominalDaily;
  return {
    "x-hubspot-ratelimit-max": String(window.max),
    "x-hubspot-ratelimit-remaining": String(Math.max(0, remaining)),
    "x-hubspot-ratelimit-interval-milliseconds": String(window.intervalMs),
    "x-hubspot-ratelimit-daily": String(daily),
    "x-hubspot-ratelimit-daily-remaining": String(Math.max(0, daily - state.daily.count)),
  };
};

type RateLimitPolicy = "TEN_SECONDLY_ROLLING" | "DAILY" | "SECONDLY";

const rateLimitMessages: Record<RateLimitPolicy, string> = {
  TEN_SECONDLY_ROLLING: "You have reached your ten_secondly_rolling limit.",
  DAILY: "You have reached your daily limit.",
  SECONDLY: "You have reached your secondly limit.",
};

const rateLimited = (state: HubSpotApiState, retryAfterSeconds: number, policyName: RateLimitPolicy) =>
  json(429, errorBody("RATE_LIMITS", rateLimitMessages[policyName], { errorType: "RATE_LIMIT", policyName }), {
    ...rateLimitHeaders(state, 0),
    "retry-after": String(retryAfterSeconds),
  });

/** Counts the call against the rolling window; answers 429 when the window or the day is spent. */
const admit = (state: HubSpotApiState): { headers: Record<string, string> } | { response: FakeHttpResponse } => {
  const now = state.clock.now();
  const window = state.knobs.rateLimit ?? nominalWindow;
  while (state.callTimes.length > 0 && state.callTimes[0]! <= now - window.intervalMs) state.callTimes.shift();
  if (state.knobs.dailyLimit !== undefined && state.daily.count >= state.knobs.dailyLimit) {
    const midnight = new Date(now);
    midnight.setUTCHours(24, 0, 0, 0);
    return { response: rateLimited(state, Math.ceil((midnight.getTime() - now) / 1000), "DAILY") };
  }
  if (state.knobs.rateLimit !== undefined && state.callTimes.length >= window.max) {
    const freeAt = state.callTimes[0]! + window.intervalMs;
    return { response: rateLimited(state, Math.max(1, Math.ceil((freeAt - now) / 1000)), "TEN_SECONDLY_ROLLING") };
  }
  state.callTimes.push(now);
  state.daily.count++;
  return { headers: rateLimitHeaders(state, window.max - state.callTimes.length) };
};

const sleep = (state: HubSpotApiState, ms: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      state.hangs.delete(done);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    // A hang must never keep a test process alive.
    timer.unref?.();
    state.hangs.add(done);
    signal?.addEventListener("abort", done, { once: true });
  });

const serverError = (status: number) =>
  json(status, errorBody("INTERNAL_ERROR", status === 503 ? "Service unavailable" : "internal error"));

/** Decides this call's fault: queued ones first, then the random shares. */
const drawFault = (state: HubSpotApiState): HubSpotFault | undefined => {
  const queued = state.queuedFaults.shift();
  if (queued !== undefined) return queued;
  const { knobs } = state;
  if (knobs.hangRate > 0 && state.random() < knobs.hangRate) return { kind: "hang" };
  if (knobs.serverErrorRate > 0 && state.random() < knobs.serverErrorRate) {
    const statuses = [500, 502, 503, 504];
    return { kind: "status", status: statuses[Math.floor(state.random() * statuses.length)]! };
  }
  return undefined;
};

const authenticate = (state: HubSpotApiState, request: FakeHttpRequest): FakeHttpResponse | undefined => {
  const header = request.headers.get("authorization") ?? "";
  const token = header.startsWith("Bearer ") ? header.slice("Bearer ".length).trim() : "";
  if (state.privateAppTokens.has(token)) return undefined;
  const expiresAt = state.issuedTokens.get(token);
  if (expiresAt !== undefined && expiresAt > state.clock.now()) return undefined;
  if (expiresAt !== undefined) {
    return json(
      401,
      errorBody("EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired.", {
        context: { expiresAt: [iso(expiresAt)] },
      }),
    );
  }
  return json(
    401,
    errorBody(
      "INVALID_AUTHENTICATION",
      "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
    ),
  );
};

/** `POST /oauth/v1/token` (form encoded): the refresh-token grant. */
const issueToken = (state: HubSpotApiState, request: FakeHttpRequest): FakeHttpResponse => {
  const form = new URLSearchParams(request.body);
  if (form.get("grant_type") !== "refresh_token") {
    return json(400, {
      status: "BAD_GRANT_TYPE",
      message: "grant_type must be refresh_token",
      correlationId: randomUUID(),
    });
  }
  const app = state.oauthApps.find((a) => a.clientId === form.get("client_id"));
  if (app === undefined || app.clientSecret !== form.get("client_secret")) {
    return json(400, { status: "BAD_CLIENT_ID", message: "missing or unknown client id", correlationId: randomUUID() });
  }
  if (app.refreshToken !== form.get("refresh_token")) {
    return json(400, {
      status: "BAD_REFRESH_TOKEN",
      message: "missing or unknown refresh token",
      correlationId: randomUUID(),
    });
  }
  const accessToken = `fake-access-${randomUUID()}`;
  state.issuedTokens.set(accessToken, state.clock.now() + state.accessTokenTtlSeconds * 1000);
  return json(200, {
    token_type: "bearer",
    refresh_token: app.refreshToken,
    access_token: accessToken,
    expires_in: state.accessTokenTtlSeconds,
  });
};

const listObjects = (state: HubSpotApiState, type: HubSpotObjectType, url: URL): FakeHttpResponse => {
  const limit = url.searchParams.has("limit") ? Number(url.searchParams.get("limit")) : listDefaultLimit;
  const listMaxLimit = state.knobs.listMaxLimit;
  if (!Number.isInteger(limit) || limit < 1 || limit > listMaxLimit) {
    return validationError(
      `limit must be an integer between 1 and ${listMaxLimit}, got ${url.searchParams.get("limit")}`,
    );
  }
  const archived = url.searchParams.get("archived") === "true";
  const after = url.searchParams.get("after");
  if (after !== null && !/^\d+$/.test(after)) return validationError(`Invalid after value: ${after}`);
  const requested = url.searchParams.getAll("properties").flatMap((p) => parseProperties(p) ?? []);
  // `after` is the id to start from: stable while objects are created or archived mid-read. The
  // walk starts there in the store's id index (of archived objects, for the archived listing) and
  // stops one past the page: a page costs O(limit), plus the archived objects a live listing
  // steps over.
  const page: Array<StoredHubSpotObject> = [];
  let next: StoredHubSpotObject | undefined;
  const objects = archived
    ? state.store.fromArchived(type, after ?? undefined)
    : state.store.from(type, after ?? undefined);
  for (const object of objects) {
    if (object.archived !== archived) continue;
    if (page.length === limit) {
      next = object;
      break;
    }
    page.push(object);
  }
  const names = wireProperties(type, requested.length > 0 ? requested : undefined);
  return json(200, {
    results: page.map((o) => wireObject(state, o, names, true)),
    ...(next !== undefined
      ? { paging: { next: { after: next.id, link: `${url.origin}${url.pathname}?after=${next.id}` } } }
      : {}),
  });
};

interface SearchFilter {
  readonly propertyName: string;
  readonly operator: string;
  readonly value?: unknown;
}

/** A filter with its value parsed once, not once per object it is tested against. */
interface PreparedFilter extends SearchFilter {
  readonly target: number | string;
}

/**
 * `lastModified`: the type's modification-time property. Its value is the object's `updatedAt`,
 * so it is compared as that number instead of parsing the ISO text of every object: a delta's
 * search filters on it, over every object of the store, page after page.
 */
const matchesFilter = (
  object: StoredHubSpotObject,
  filter: PreparedFilter,
  lastModified: string,
): boolean | "unsupported" => {
  const raw = filter.propertyName === "hs_object_id" ? object.id : (object.properties[filter.propertyName] ?? null);
  if (filter.operator === "HAS_PROPERTY") return raw !== null;
  if (filter.operator === "NOT_HAS_PROPERTY") return raw === null;
  if (raw === null) return false;
  const value = filter.propertyName === lastModified ? object.updatedAt : comparableValue(raw);
  const difference = compare(value, filter.target);
  switch (filter.operator) {
    case "EQ":
      return difference === 0;
    case "NEQ":
      return difference !== 0;
    case "GT":
      return difference > 0;
    case "GTE":
      return difference >= 0;
    case "LT":
      return difference < 0;
    case "LTE":
      return difference <= 0;
    default:
      return "unsupported";
  }
};

interface SearchSort {
  readonly propertyName: string;
  readonly descending: boolean;
}

/**
 * Every object passing `matches`, ordered by `sorts`, then by numeric id (`knobs.searchTieOrder`):
 * a scan and a sort of the store.
 */
const sortedMatches = (
  state: HubSpotApiState,
  type: HubSpotObjectType,
  sorts: ReadonlyArray<SearchSort>,
  matches: (object: StoredHubSpotObject) => boolean,
): Array<StoredHubSpotObject> => {
  // Sort keys are computed once per object: searches over 10,000+ objects stay cheap.
  const keyed = state.store
    .all(type)
    .filter(matches)
    .map((object) => ({
      object,
      keys: sorts.map((sort) =>
        comparableValue(
          sort.propertyName === "hs_object_id" ? object.id : (object.properties[sort.propertyName] ?? ""),
        ),
      ),
    }));
  // Without a sort, objects come in creation (id) order; the knob orders what a sort leaves tied.
  const tieBreak = sorts.length > 0 && state.knobs.searchTieOrder === "id-descending" ? -1 : 1;
  keyed.sort((a, b) => {
    for (const [i, sort] of sorts.entries()) {
      const difference = compare(a.keys[i]!, b.keys[i]!);
      if (difference !== 0) return sort.descending ? -difference : difference;
    }
    return tieBreak * (Number(a.object.id) - Number(b.object.id));
  });
  return keyed.map((entry) => entry.object);
};

/**
 * The same answer as `sortedMatches` for a delta's search, one group of bounds on the
 * modification time sorted by it ascending, read from the store's modification-time index: a
 * binary search to the lower bound, then a walk to the upper one (a page costs O(window), not
 * O(store)). Undefined for any other search.
 */
const modificationWindow = (
  state: HubSpotApiState,
  type: HubSpotObjectType,
  groups: ReadonlyArray<ReadonlyArray<PreparedFilter>>,
  sorts: ReadonlyArray<SearchSort>,
  matches: (object: StoredHubSpotObject) => boolean,
): Array<StoredHubSpotObject> | undefined => {
  const lastModified = hubSpotObjectSchemas[type].lastModified;
  const [group] = groups;
  const [sort] = sorts;
  if (groups.length !== 1 || group === undefined || group.length === 0) return undefined;
  if (sorts.length !== 1 || sort?.propertyName !== lastModified || sort.descending) return undefined;
  if (state.knobs.searchTieOrder !== "id") return undefined;
  const bounds = ["GT", "GTE", "LT", "LTE", "EQ"];
  if (!group.every((f) => f.propertyName === lastModified && bounds.includes(f.operator))) return undefined;
  if (!group.every((f) => typeof f.target === "number")) return undefined;
  const lower = Math.max(
    ...group.filter((f) => f.operator !== "LT" && f.operator !== "LTE").map((f) => f.target as number),
    Number.NEGATIVE_INFINITY,
  );
  const upper = Math.min(
    ...group.filter((f) => f.operator !== "GT" && f.operator !== "GTE").map((f) => f.target as number),
    Number.POSITIVE_INFINITY,
  );
  const index = state.store.byModification(type);
  let low = 0;
  let high = index.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (index[middle]!.updatedAt < lower) low = middle + 1;
    else high = middle;
  }
  const window: Array<StoredHubSpotObject> = [];
  for (let i = low; i < index.length && index[i]!.updatedAt <= upper; i++) {
    if (matches(index[i]!)) window.push(index[i]!);
  }
  return window;
};

/**
 * `POST /crm/v3/objects/{type}/search`: filter groups (ORed, their filters ANDed), one sorting
 * rule, and `after` as an offset into the query's results as they are now (an object edited
 * between two pages moves, and the pages after it shift), with the 10,000 cap.
 */
const searchObjects = (state: HubSpotApiState, type: HubSpotObjectType, request: FakeHttpRequest) => {
  const parsed = parseJsonBody(request);
  if ("error" in parsed) return parsed.error;
  const body = parsed.value as {
    filterGroups?: Array<{ filters?: Array<SearchFilter> }>;
    sorts?: Array<string | { propertyName: string; direction?: string }>;
    properties?: Array<string>;
    limit?: number;
    after?: string | number;
  };
  const limit = body.limit ?? 10;
  if (!Number.isInteger(limit) || limit < 1 || limit > searchMaxLimit) {
    return validationError(`limit must be between 1 and ${searchMaxLimit}`);
  }
  const after = body.after === undefined ? 0 : Number(body.after);
  if (!Number.isInteger(after) || after < 0) return validationError(`Invalid after value: ${body.after}`);
  const searchResultCap = state.knobs.searchResultCap;
  if (after >= searchResultCap) {
    return validationError(
      `Search only returns the first ${searchResultCap} results (after=${after}); narrow the query, e.g. by ${hubSpotObjectSchemas[type].lastModified}`,
    );
  }
  const groups = (body.filterGroups ?? []).map((group) =>
    (group.filters ?? []).map((filter): PreparedFilter => ({ ...filter, target: comparableValue(filter.value) })),
  );
  const lastModified = hubSpotObjectSchemas[type].lastModified;
  const lagBound = state.clock.now() - state.knobs.searchLagMs;
  let unsupported: string | undefined;
  // Archived objects are never searchable; groups are ORed, filters within a group ANDed.
  const matches = (object: StoredHubSpotObject) => {
    if (object.archived || (state.knobs.searchLagMs > 0 && object.updatedAt > lagBound)) return false;
    if (state.hiddenFromSearch.size > 0 && state.hiddenFromSearch.has(object.id)) return false;
    if (groups.length === 0) return true;
    return groups.some((group) =>
      group.every((filter) => {
        const result = matchesFilter(object, filter, lastModified);
        if (result === "unsupported") unsupported = filter.operator;
        return result === true;
      }),
    );
  };
  // "Only one sorting rule can be applied to any search" (HubSpot's search guide).
  if ((body.sorts ?? []).length > 1) return validationError("Only one sorting rule can be applied to a search");
  const sorts = (body.sorts ?? []).map((s) =>
    typeof s === "string"
      ? { propertyName: s.replace(/^-/, ""), descending: s.startsWith("-") }
      : { propertyName: s.propertyName, descending: s.direction === "DESCENDING" },
  );
  const ordered = modificationWindow(state, type, groups, sorts, matches) ?? sortedMatches(state, type, sorts, matches);
  if (unsupported !== undefined) return validationError(`Unsupported filter operator: ${unsupported}`);
  const end = Math.min(after + limit, ordered.length);
  const page = ordered.slice(after, end);
  return json(200, {
    total: ordered.length,
    results: page.map((o) => toWire(state, type, o, parseProperties(body.properties), true)),
    ...(end < ordered.length
      ? { paging: { next: { after: String(end), link: `${request.url.origin}${request.url.pathname}?after=${end}` } } }
      : {}),
  });
};

const getObject = (state: HubSpotApiState, type: HubSpotObjectType, id: string, url: URL) => {
  const object = state.store.get(type, id);
  const archived = url.searchParams.get("archived") === "true";
  if (object === undefined || object.archived !== archived) {
    return json(
      404,
      errorBody("OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.", { context: { id: [id] } }),
    );
  }
  const requested = url.searchParams.getAll("properties").flatMap((p) => parseProperties(p) ?? []);
  return json(200, toWire(state, type, object, requested.length > 0 ? requested : undefined, true));
};

type BatchOperation = "read" | "create" | "update" | "upsert" | "archive";

interface BatchInput {
  readonly id?: string;
  readonly idProperty?: string;
  readonly properties?: Record<string, unknown>;
}

/**
 * `batch/create` is all or nothing: HubSpot checks every input first, and one it refuses fails
 * the whole request with that input's error (one 409 CONFLICT "Contact already exists. Existing
 * ID: N" for an email already taken, one 400 VALIDATION_ERROR for a bad value), creating nothing.
 * Only inputs tagged with `objectWriteTraceId` opt into a 207 with partial results, which this
 * fake does not serve. Two inputs sharing a new email are refused the same way (unverified: the
 * message then names no existing id).
 * See https://developers.hubspot.com/docs/api-reference/error-handling (multi-status errors)
 */
const batchCreate = (state: HubSpotApiState, type: HubSpotObjectType, inputs: ReadonlyArray<BatchInput>) => {
  const startedAt = iso(state.clock.now());
  const emails = new Set<string>();
  for (const input of inputs) {
    const properties = input.properties ?? {};
    const refused = state.store.refusal(type, properties);
    if (refused !== undefined) return failureResponse(refused);
    const email = type === "contacts" && typeof properties.email === "string" ? properties.email.toLowerCase() : "";
    if (email !== "" && emails.has(email)) {
      return failureResponse({ category: "CONFLICT", message: "Contact already exists." });
    }
    emails.add(email);
  }
  const results = inputs.map((input) => {
    const outcome = state.store.create(type, input.properties ?? {});
    if ("failure" in outcome) throw new Error(`the fake accepted a create it then refused: ${outcome.failure.message}`);
    return toWire(state, type, outcome.object, Object.keys(input.properties ?? {}), false);
  });
  return json(201, { status: "COMPLETE", results, startedAt, completedAt: iso(state.clock.now()) });
};

/** Batch endpoints: up to 100 inputs; per-input failures of the others answer 207 with `errors[]`. */
const batch = (
  state: HubSpotApiState,
  type: HubSpotObjectType,
  operation: BatchOperation,
  request: FakeHttpRequest,
) => {
  const parsed = parseJsonBody(request);
  if ("error" in parsed) return parsed.error;
  const body = parsed.value as { inputs?: Array<BatchInput>; properties?: Array<string> };
  const inputs = body.inputs;
  if (!Array.isArray(inputs)) return validationError("inputs is required");
  if (inputs.length > batchMaxInputs) {
    return validationError(`Batch size must be at most ${batchMaxInputs}; got ${inputs.length} inputs`);
  }
  if (operation === "create") return batchCreate(state, type, inputs);
  const startedAt = iso(state.clock.now());
  const results: Array<Record<string, unknown>> = [];
  const errors: Array<Record<string, unknown>> = [];
  const fail = (failure: HubSpotFailure) =>
    errors.push({
      status: "error",
      category: failure.category,
      message: failure.message,
      context: failure.context ?? {},
      ...(failure.errors ? { errors: failure.errors } : {}),
    });
  const missing: Array<string> = [];
  for (const input of inputs) {
    switch (operation) {
      case "read": {
        const object = input.id === undefined ? undefined : state.store.get(type, String(input.id));
        if (object === undefined || object.archived) missing.push(String(input.id));
        else results.push(toWire(state, type, object, parseProperties(body.properties), true));
        break;
      }
      case "update": {
        const outcome = state.store.update(type, String(input.id), input.properties ?? {});
        if ("failure" in outcome) fail(outcome.failure);
        else results.push(toWire(state, type, outcome.object, Object.keys(input.properties ?? {}), false));
        break;
      }
      case "upsert": {
        if (type !== "contacts" || input.idProperty !== "email" || typeof input.id !== "string") {
          fail({ category: "VALIDATION_ERROR", message: 'upsert needs idProperty "email" and an id (the email)' });
          break;
        }
        const properties = { ...input.properties, email: input.id };
        const existing = state.store.findByEmail(input.id);
        const outcome =
          existing === undefined
            ? state.store.create(type, properties)
            : state.store.update(type, existing.id, properties);
        if ("failure" in outcome) fail(outcome.failure);
        else
          results.push({
            ...toWire(state, type, outcome.object, Object.keys(properties), false),
            new: existing === undefined,
          });
        break;
      }
      case "archive":
        if (input.id !== undefined) state.store.archive(type, String(input.id));
        break;
    }
  }
  if (operation === "archive") return { status: 204, headers: {} } satisfies FakeHttpResponse;
  if (missing.length > 0) {
    fail({
      category: "OBJECT_NOT_FOUND",
      message: `Could not get some ${type === "contacts" ? "CONTACT" : "COMPANY"} objects, they may be deleted or not exist. Check that ids are valid.`,
      context: { ids: missing },
    });
  }
  const completedAt = iso(state.clock.now());
  if (errors.length > 0) {
    return json(207, { status: "COMPLETE", results, numErrors: errors.length, errors, startedAt, completedAt });
  }
  return json(200, { status: "COMPLETE", results, startedAt, completedAt });
};

const route = (state: HubSpotApiState, request: FakeHttpRequest): FakeHttpResponse => {
  const method = request.method.toUpperCase();
  const segments = request.url.pathname.split("/").filter((s) => s !== "");
  const notFound = () => json(404, errorBody("OBJECT_NOT_FOUND", `No route for ${method} ${request.url.pathname}`));
  if (segments[0] !== "crm" || segments[1] !== "v3" || segments[2] !== "objects") return notFound();
  const type = objectTypeFromPath(segments[3] ?? "");
  if (type === undefined) return notFound();
  const rest = segments.slice(4);
  if (rest.length === 0) {
    if (method === "GET") return listObjects(state, type, request.url);
    if (method === "POST") {
      const parsed = parseJsonBody(request);
      if ("error" in parsed) return parsed.error;
      const outcome = state.store.create(type, (parsed.value as BatchInput).properties ?? {});
      if ("failure" in outcome) return failureResponse(outcome.failure);
      return json(
        201,
        toWire(state, type, outcome.object, Object.keys((parsed.value as BatchInput).properties ?? {}), false),
      );
    }
    return notFound();
  }
  if (rest[0] === "search" && rest.length === 1 && method === "POST") return searchObjects(state, type, request);
  if (rest[0] === "batch" && rest.length === 2 && method === "POST") {
    const operation = rest[1] as BatchOperation;
    if (!["read", "create", "update", "upsert", "archive"].includes(operation)) return notFound();
    return batch(state, type, operation, request);
  }
  if (rest.length !== 1) return notFound();
  const id = rest[0]!;
  if (method === "GET") return getObject(state, type, id, request.url);
  if (method === "PATCH") {
    const parsed = parseJsonBody(request);
    if ("error" in parsed) return parsed.error;
    const properties = (parsed.value as BatchInput).properties ?? {};
    const outcome = state.store.update(type, id, properties);
    if ("failure" in outcome) return failureResponse(outcome.failure);
    return json(200, toWire(state, type, outcome.object, Object.keys(properties), false));
  }
  if (method === "DELETE") {
    // HubSpot answers 204 whether or not the object existed.
    state.store.archive(type, id);
    return { status: 204, headers: {} };
  }
  return notFound();
};

/**
 * Answers one request the way HubSpot CRM v3 would, faults and limits included.
 * Transport-independent: the testkit's MSW handlers and the loopback server both call it.
 */
export const handleHubSpotRequest = async (
  state: HubSpotApiState,
  request: FakeHttpRequest,
): Promise<FakeHttpResponse> => {
  const path = `${request.url.pathname}${request.url.search}`;
  const answer = (response: FakeHttpResponse) => {
    state.requestLog.push({ method: request.method.toUpperCase(), path, status: response.status });
    return response;
  };
  const { latencyMs } = state.knobs;
  const latency =
    typeof latencyMs === "number" ? latencyMs : latencyMs[0] + state.random() * (latencyMs[1] - latencyMs[0]);
  if (latency > 0) await sleep(state, latency, request.signal);

  if (request.url.pathname === "/oauth/v1/token" && request.method.toUpperCase() === "POST") {
    return answer(issueToken(state, request));
  }
  const fault = drawFault(state);
  if (fault?.kind === "hang") {
    await sleep(state, state.knobs.hangMs, request.signal);
    return answer(json(504, errorBody("INTERNAL_ERROR", "Gateway timeout")));
  }
  if (fault?.kind === "status") return answer(serverError(fault.status));
  const refused = authenticate(state, request);
  if (refused !== undefined) return answer(refused);
  if (fault?.kind === "rateLimit")
    return answer(rateLimited(state, fault.retryAfterSeconds ?? 10, "TEN_SECONDLY_ROLLING"));
  const admitted = admit(state);
  if ("response" in admitted) return answer(admitted.response);
  if (state.knobs.searchPerSecond !== undefined && request.url.pathname.endsWith("/search")) {
    // Search has its own, lower limit per account (about 5 a second), answered with SECONDLY.
    const now = state.clock.now();
    while (state.searchCallTimes.length > 0 && state.searchCallTimes[0]! <= now - 1_000) state.searchCallTimes.shift();
    if (state.searchCallTimes.length >= state.knobs.searchPerSecond) return answer(rateLimited(state, 1, "SECONDLY"));
    state.searchCallTimes.push(now);
  }
  const response = route(state, request);
  return answer({ ...response, headers: { ...admitted.headers, ...response.headers } });
};
