import type { Principal } from "@tandem/core";
import { ApiKeys } from "@tandem/core";
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

const bearer = (header: string | null): string | undefined => {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return match?.[1];
};

/**
 * Resolves `Authorization: Bearer <key>` to a principal. Browsers' EventSource
 * cannot set headers, so SSE subscriptions may send it as the tRPC connection
 * parameter `authorization` instead.
 */
export const createContext = async (
  runtime: AppRuntime,
  request: Request,
  connectionParams?: Readonly<Record<string, string | undefined>> | null,
): Promise<Context> => {
  const key = bearer(request.headers.get("authorization") ?? connectionParams?.authorization ?? null);
  const principal =
    key === undefined
      ? null
      : Option.getOrNull(await runtime.runPromise(Effect.flatMap(ApiKeys, (keys) => keys.authenticate(key))));
  return createContextInner({ runtime, principal });
};
