import type { Principal } from "@tandem/core";
import { ApiKeys } from "@tandem/core";
import type { TRPCRequestInfo } from "@trpc/server/http";
import { Effect, Option } from "effect";
import type { AppRuntime } from "./runtime.ts";

export interface Context {
  readonly runtime: AppRuntime;
  /** Who is calling; null without a valid key. */
  readonly principal: Principal | null;
}

/** The context without HTTP: tests build it directly and call procedures with createCaller. */
export const createContextInner = (options: {
  readonly runtime: AppRuntime;
  readonly principal: Principal | null;
}): Context => ({
  runtime: options.runtime,
  principal: options.principal,
});

/** The key of an `Authorization: Bearer <key>` header. */
export const bearer = (header: string | null): string | undefined => {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return match?.[1];
};

/**
 * Subscriptions only: a key in a URL (the connection parameters travel in the query string) ends
 * up in proxies' and browsers' logs and history, so no other procedure accepts one from there.
 */
const isSubscription = (info: Pick<TRPCRequestInfo, "calls">) =>
  info.calls.length > 0 && info.calls.every((call) => call.procedure?._def.type === "subscription");

/**
 * Resolves `Authorization: Bearer <key>` to a principal. Browsers' EventSource
 * cannot set headers, so SSE subscriptions (and only they) may send it as the
 * tRPC connection parameter `authorization` instead.
 */
export const createContext = async (
  runtime: AppRuntime,
  request: Request,
  info?: Pick<TRPCRequestInfo, "calls" | "connectionParams">,
): Promise<Context> => {
  const fromParams = info !== undefined && isSubscription(info) ? info.connectionParams?.authorization : undefined;
  const key = bearer(request.headers.get("authorization") ?? fromParams ?? null);
  const principal =
    key === undefined
      ? null
      : Option.getOrNull(await runtime.runPromise(Effect.flatMap(ApiKeys, (keys) => keys.authenticate(key))));
  return createContextInner({ runtime, principal });
};
