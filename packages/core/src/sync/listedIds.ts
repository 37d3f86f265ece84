import type { StagedPage } from "../store/ReconcileStage.ts";
import type { SyncItemError } from "./SyncJob.ts";

/** One page of `readIds` as reconciliation stages it, and the entries it could not read fully. */
export interface ListedPage {
  readonly staged: StagedPage;
  /** Ids listed with a time that is not one: staged without it (never deleted, never re-fetched). */
  readonly errors: ReadonlyArray<SyncItemError>;
  /** Entries of the page that carried a modification time. */
  readonly withTimes: number;
}

const idOf = (value: unknown): string | undefined =>
  (typeof value === "string" && value !== "") || (typeof value === "number" && Number.isFinite(value))
    ? String(value)
    : undefined;

/**
 * A listed modification time in epoch ms: a Date, or what `new Date` reads (ISO text, epoch ms)
 * for plain-JS connectors; undefined when it is not a time.
 */
const timeOf = (value: unknown): number | undefined => {
  const ms =
    value instanceof Date
      ? value.getTime()
      : typeof value === "string" || typeof value === "number"
        ? new Date(value).getTime()
        : Number.NaN;
  return Number.isNaN(ms) ? undefined : ms;
};

/**
 * Reads one page of `readIds`: bare ids (strings or numbers) and `{ id, updatedAt }` entries.
 * An entry without a usable id is skipped, as bare ids always were; an id whose time is unusable
 * is staged without it and reported, so that it is neither deleted nor re-fetched on a bad time.
 */
export const readListedPage = (page: ReadonlyArray<unknown>): ListedPage => {
  const externalIds: Array<string> = [];
  const updatedAtMs: Array<number | null> = [];
  const errors: Array<SyncItemError> = [];
  let withTimes = 0;
  for (const entry of page) {
    if (typeof entry !== "object" || entry === null) {
      const externalId = idOf(entry);
      if (externalId === undefined) continue;
      externalIds.push(externalId);
      updatedAtMs.push(null);
      continue;
    }
    const listed = entry as { readonly id?: unknown; readonly updatedAt?: unknown };
    const externalId = idOf(listed.id);
    if (externalId === undefined) continue;
    const ms = timeOf(listed.updatedAt);
    if (ms === undefined) {
      errors.push({
        externalId,
        type: "InvalidRecord",
        message: `readIds listed an unusable updatedAt: ${String(listed.updatedAt)}`,
      });
    } else withTimes++;
    externalIds.push(externalId);
    updatedAtMs.push(ms ?? null);
  }
  return { staged: { externalIds, updatedAtMs }, errors, withTimes };
};
