import { type ConnectorContext, InvalidRecord, NotFound, Unavailable } from "@tandem/connector-sdk";
import { Redacted, Schema } from "effect";
import type { TaskboardConfig } from "./config.ts";

/** The context every Taskboard function receives. */
export type TaskboardContext = ConnectorContext<TaskboardConfig>;

/**
 * One authenticated call through `ctx.http`, the engine's client: it draws from the
 * connection's rate budget and already turns 401 into AuthExpired, 429 into RateLimited
 * (with Retry-After) and 5xx/timeouts into Unavailable. What is left is ours to map.
 */
export const taskboardRequest = async (
  ctx: TaskboardContext,
  input: {
    readonly method?: string;
    readonly path: string;
    readonly query?: Record<string, string | number | undefined>;
    readonly body?: unknown;
  },
) => {
  const response = await ctx.http.request({
    method: input.method ?? "GET",
    url: `${ctx.config.baseUrl}${input.path}`,
    query: input.query,
    body: input.body,
    headers: { authorization: `Bearer ${Redacted.value(ctx.config.apiKey)}` },
  });
  if (response.status === 404) throw new NotFound({ message: `${input.path}: not found` });
  // 422 is Taskboard's "this input is invalid": a bad record, never worth retrying.
  if (response.status === 422) throw new InvalidRecord({ message: `${input.path}: ${JSON.stringify(response.body)}` });
  if (response.status >= 300) throw new Unavailable({ message: `${input.path} answered ${response.status}` });
  return response;
};

/** Decodes an answer's envelope; a shape we do not know means the vendor misbehaves (transient). */
export const decodeBody = <A, I>(schema: Schema.Schema<A, I, never>, body: unknown, where: string): A => {
  const decoded = Schema.decodeUnknownEither(schema)(body);
  if (decoded._tag === "Left")
    throw new Unavailable({ message: `${where}: unexpected answer: ${decoded.left.message}` });
  return decoded.right;
};

/**
 * Taskboard's rate-limit headers: `x-ratelimit-remaining` and `x-ratelimit-reset` (seconds
 * until the window resets). The engine's token bucket reads them after every response.
 */
export const taskboardRateLimit = {
  requestsPerSecond: 20,
  burst: 20,
  fromHeaders: (headers: Headers) => ({
    remaining: Number(headers.get("x-ratelimit-remaining") ?? Number.NaN),
    resetAfterMs: Number(headers.get("x-ratelimit-reset") ?? Number.NaN) * 1000,
  }),
};
