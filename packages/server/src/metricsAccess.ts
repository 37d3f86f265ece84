import { createHash, timingSafeEqual } from "node:crypto";
import { ApiKeys } from "@tandem/core";
import { Effect, Option, Redacted } from "effect";
import { bearer } from "./context.ts";
import type { AppRuntime } from "./runtime.ts";

const digest = (value: string) => createHash("sha256").update(value).digest();

/**
 * Who may scrape `/metrics`: its series are labelled with every tenant's and connection's id, so
 * it wants `Authorization: Bearer <token>`, with `TANDEM_METRICS_TOKEN` (what a Prometheus
 * `authorization: { credentials_file: ... }` sends) or the admin key. Answers whether the
 * request's `Authorization` header is one of them.
 */
export const makeMetricsAccess =
  (runtime: AppRuntime, token: Option.Option<Redacted.Redacted<string>>) =>
  async (authorization: string | null): Promise<boolean> => {
    const key = bearer(authorization);
    if (key === undefined) return false;
    // Digests compared in constant time: equal lengths, and no early exit on the first differing byte.
    if (Option.isSome(token) && timingSafeEqual(digest(key), digest(Redacted.value(token.value)))) return true;
    const principal = await runtime.runPromise(Effect.flatMap(ApiKeys, (keys) => keys.authenticate(key)));
    return Option.isSome(principal) && principal.value.role === "admin";
  };
