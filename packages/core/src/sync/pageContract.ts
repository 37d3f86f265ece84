import type { ReadPage } from "@tandem/connector-sdk";
import { Effect } from "effect";
import { invalidPage, type ResolvedEntity } from "./ResolvedEntity.ts";
import type { InvalidPage } from "./SyncRun.ts";

/**
 * A page a connector's `read` yielded, checked against the page contract
 * (`{ records: [...], cursor?, deleted? }`); deleted ids are normalized to strings.
 */
export const pageOf = (r: ResolvedEntity, page: unknown): Effect.Effect<ReadPage, InvalidPage> => {
  const p = page as Partial<ReadPage> | null;
  if (typeof p !== "object" || p === null || !Array.isArray(p.records)) {
    return Effect.fail(invalidPage(r, "read yielded a page that is not { records: [...], cursor? }"));
  }
  if (p.cursor !== undefined && p.cursor !== null && typeof p.cursor !== "string") {
    return Effect.fail(invalidPage(r, "page cursor must be a string or undefined"));
  }
  if (p.deleted !== undefined && p.deleted !== null && !Array.isArray(p.deleted)) {
    return Effect.fail(invalidPage(r, "page deleted must be an array of ids"));
  }
  return Effect.succeed({
    records: p.records,
    cursor: p.cursor ?? undefined,
    deleted: (p.deleted ?? []).filter((id) => typeof id === "string" || typeof id === "number").map(String),
  });
};
