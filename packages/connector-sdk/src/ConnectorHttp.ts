import { Redacted } from "effect";
import { type AccessGrant, AuthExpired, type ConnectorHttp, RateLimited, Unavailable } from "./Connector.ts";
import { type EgressPolicyService, EgressRefused, isEgressRefused, strictEgressPolicy } from "./EgressPolicy.ts";

export interface ConnectorHttpOptions {
  /** Per-request timeout unless the call sets its own. Default 30 s. */
  readonly timeoutMs?: number;
  /** Used when a 429 carries no Retry-After. Default 1 s. */
  readonly defaultRetryAfterMs?: number;
  /** Aborts every in-flight request (job cancelled, process shutting down). */
  readonly signal?: AbortSignal;
  /**
   * Called before each request; resolves when the connection's rate budget allows it.
   * The engine passes its per-connection token bucket here.
   */
  readonly acquire?: () => Promise<void>;
  /** Called with every response's headers, so the budget can learn the vendor's limits. */
  readonly observe?: (headers: Headers, status: number) => void;
  /** Where requests may go. Default: the strict policy (no private addresses, no exceptions). */
  readonly egress?: EgressPolicyService;
  /**
   * The connection's access grant (connectors with an `auth` hook): sent as a bearer token, and
   * renewed once when a request is answered 401.
   */
  readonly credentials?: {
    readonly current: () => Promise<AccessGrant>;
    readonly renew: (refused: AccessGrant) => Promise<AccessGrant>;
  };
}

type RequestInput = Parameters<ConnectorHttp["request"]>[0];
type ResponseOf = Awaited<ReturnType<ConnectorHttp["request"]>>;

/** Same-origin redirects followed per request; more is a loop. */
const maxRedirects = 5;
const redirectStatuses = new Set([301, 302, 303, 307, 308]);

/**
 * Parses Retry-After: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
 * Returns milliseconds from `now`, or undefined when absent or unparseable.
 */
export const parseRetryAfter = (value: string | null, now: number): number | undefined => {
  if (value === null || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.round(seconds * 1000));
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
};

const buildUrl = (url: string, query: Record<string, string | number | boolean | undefined> | undefined) => {
  if (query === undefined) return url;
  const u = new URL(url);
  for (const [k, v] of Object.entries(query)) if (v !== undefined) u.searchParams.set(k, String(v));
  return u.toString();
};

const encodeBody = (body: unknown, headers: Record<string, string>): string | URLSearchParams | undefined => {
  if (body === undefined) return undefined;
  if (typeof body === "string" || body instanceof URLSearchParams) return body;
  headers["content-type"] ??= "application/json";
  return JSON.stringify(body);
};

const decodeBody = async (response: Response): Promise<unknown> => {
  const text = await response.text();
  if (text === "") return undefined;
  const type = response.headers.get("content-type") ?? "";
  if (type.includes("json")) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
};

/**
 * The HTTP client the engine hands connectors as `ctx.http`. It maps transport
 * outcomes to connector error reasons so every connector behaves alike:
 * 401 -> AuthExpired, 429 -> RateLimited (honouring Retry-After),
 * 408/5xx, timeouts and network failures -> Unavailable. Other statuses are
 * returned for the connector to interpret (404 may mean "deleted", 409 a conflict).
 * Every request, and every redirect hop, passes the egress policy (`EgressRefused`
 * otherwise); redirects are followed within the same origin only.
 */
export const makeConnectorHttp = (options: ConnectorHttpOptions = {}): ConnectorHttp => {
  const send = (input: RequestInput, grant?: AccessGrant) => sendOnce(options, input, grant);
  const credentials = options.credentials;
  if (credentials === undefined) return { request: (input) => send(input) };
  return {
    request: async (input) => {
      const own = Object.keys(input.headers ?? {}).some((name) => name.toLowerCase() === "authorization");
      if (input.authenticate === false || own) return send(input);
      const grant = await credentials.current();
      try {
        return await send(input, grant);
      } catch (error) {
        if (!(error instanceof AuthExpired)) throw error;
        // The token expired or was revoked before its stated expiry: one new grant, one more try.
        const renewed = await credentials.renew(grant);
        try {
          return await send(input, renewed);
        } catch (again) {
          if (!(again instanceof AuthExpired)) throw again;
          throw new AuthExpired({
            message: `${again.message} with a newly obtained access token. The connection's credentials must be renewed (update the connection's config).`,
          });
        }
      }
    },
  };
};

/** One request (following same-origin redirects), with the grant's bearer token when given. */
const sendOnce = async (
  options: ConnectorHttpOptions,
  input: RequestInput,
  grant?: AccessGrant,
): Promise<ResponseOf> => {
  await options.acquire?.();
  const egress = options.egress ?? strictEgressPolicy();
  const headers: Record<string, string> = { accept: "application/json", ...input.headers };
  if (grant !== undefined) headers.authorization = `Bearer ${Redacted.value(grant.accessToken)}`;
  const body = encodeBody(input.body, headers);
  const timeout = AbortSignal.timeout(input.timeoutMs ?? options.timeoutMs ?? 30_000);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  let method = input.method ?? (body === undefined ? "GET" : "POST");
  let url = buildUrl(input.url, input.query);
  let sent = body;
  const where = `${method} ${new URL(input.url).pathname}`;
  let response: Response;
  for (let redirects = 0; ; redirects++) {
    const refusal = egress.refusal(url);
    if (refusal !== undefined) throw new EgressRefused({ message: `${where} refused: the host ${refusal}` });
    try {
      response = await fetch(url, {
        method,
        headers,
        body: sent,
        signal,
        // Redirects are ours to judge: fetch would follow them anywhere, a 307 re-POSTing the
        // signed body and the Authorization header to a host nobody checked.
        redirect: "manual",
        // The dispatcher checks the address each host name resolves to, at connection time.
        dispatcher: egress.dispatcher,
      } as RequestInit);
    } catch (error) {
      if (options.signal?.aborted) throw error;
      const cause = (error as { cause?: unknown } | null)?.cause;
      if (isEgressRefused(cause)) throw new EgressRefused({ message: `${where} refused: ${cause.message}` });
      const reason = timeout.aborted ? "timed out" : error instanceof Error ? error.message : String(error);
      throw new Unavailable({ message: `${where} failed: ${reason}` });
    }
    const location = response.headers.get("location");
    if (!redirectStatuses.has(response.status) || location === null) break;
    await response.body?.cancel();
    const next = URL.parse(location, url);
    if (next === null || next.origin !== new URL(url).origin) {
      throw new EgressRefused({ message: `${where} refused: redirected to another host, which is not followed` });
    }
    if (redirects + 1 >= maxRedirects) throw new Unavailable({ message: `${where} failed: too many redirects` });
    // As fetch does: 303, and 301/302 after a POST, continue as a GET without the body.
    if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === "POST")) {
      if (method !== "HEAD") method = "GET";
      sent = undefined;
    }
    url = next.toString();
  }
  options.observe?.(response.headers, response.status);
  const decoded = await decodeBody(response);
  if (response.status === 401) throw new AuthExpired({ message: `${where} answered 401` });
  if (response.status === 429) {
    throw new RateLimited({
      retryAfterMs:
        parseRetryAfter(response.headers.get("retry-after"), Date.now()) ?? options.defaultRetryAfterMs ?? 1_000,
      message: `${where} answered 429`,
    });
  }
  if (response.status === 408 || response.status >= 500) {
    throw new Unavailable({ message: `${where} answered ${response.status}`, status: response.status });
  }
  return { status: response.status, headers: response.headers, body: decoded };
};
