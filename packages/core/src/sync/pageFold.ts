import type { InvalidRecord, ReadPage } from "@tandem/connector-sdk";
import type { DecodedRecord } from "@tandem/connector-sdk/runtime";
import { Either, HashSet } from "effect";
import type { Checkpoint, IncomingRecord } from "../store/RecordStore.ts";
import { addItemErrors, type ItemErrors, itemError, noItemErrors } from "./itemErrors.ts";
import { toIncoming } from "./PullSettlement.ts";
import type { SyncItemError } from "./SyncJob.ts";

/**
 * What a full or delta read has seen so far, page by page: the batch being filled, the
 * checkpoint that names the page boundary it ends at, and the run's guards. A pure value:
 * `foldPage` returns a new one and never changes the one it is given.
 */
export interface PageFold {
  /**
   * The batch being filled, by external id: whole pages wait here until the batch is full, so a
   * checkpoint always names a page boundary. Only what is stored is kept (not the decoded record).
   */
  readonly records: ReadonlyMap<string, IncomingRecord>;
  /** Ids the pages of this batch listed as deleted (after any record of theirs). */
  readonly deleted: ReadonlySet<string>;
  /** Where the read is: the cursor after the last page, pages so far, the newest `updatedAt`. */
  readonly checkpoint: Checkpoint;
  /** Every cursor this run was handed (persistent set: a run may see a million pages). */
  readonly cursorsSeen: HashSet.HashSet<string>;
  /** Pages read by this run (a resumed run counts from its resume point). */
  readonly pagesThisRun: number;
  readonly errors: ItemErrors;
}

/** Why a read must stop: its connector would page forever. */
export interface PageFoldFailure {
  readonly reason: "cursor-repeated" | "too-many-pages";
  readonly message: string;
}

/** Decodes one raw record with the entity's schema (`decodeRecord` bound to the entity). */
export type DecodeRecord = (raw: unknown) => Either.Either<DecodedRecord, InvalidRecord>;

/** A read about to start (or resume) at `checkpoint`: its cursor counts as already seen. */
export const startPageFold = (checkpoint: Checkpoint, maxItemErrors: number): PageFold => ({
  records: new Map(),
  deleted: new Set(),
  checkpoint,
  cursorsSeen: checkpoint.cursor === undefined ? HashSet.empty() : HashSet.make(checkpoint.cursor),
  pagesThisRun: 0,
  errors: noItemErrors(maxItemErrors),
});

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Adds one page to the fold: records that do not decode become item errors; an id twice in one
 * page is an item error (the newer occurrence is kept); across pages a repeat is normal (offset
 * paging over changing data) and the newest `updatedAt` wins; a deletion listed after a record
 * wins over it. Fails when the page's cursor was seen before or the read passes `maxPages`.
 */
export const foldPage = (
  fold: PageFold,
  page: ReadPage,
  decode: DecodeRecord,
  maxPages: number,
): Either.Either<PageFold, PageFoldFailure> => {
  const records = new Map(fold.records);
  const deleted = new Set(fold.deleted);
  const errors: Array<SyncItemError> = [];
  const inPage = new Set<string>();
  let maxUpdatedAtMs =
    fold.checkpoint.maxUpdatedAt === undefined ? undefined : Date.parse(fold.checkpoint.maxUpdatedAt);
  for (const item of page.records) {
    const decoded = decode(item);
    if (Either.isLeft(decoded)) {
      errors.push(itemError(decoded.left, decoded.left.externalId));
      continue;
    }
    const rec = decoded.right;
    if (inPage.has(rec.externalId)) {
      errors.push({
        externalId: rec.externalId,
        type: "InvalidRecord",
        message: "duplicate id within one page; the last occurrence was kept",
      });
    }
    inPage.add(rec.externalId);
    const earlier = records.get(rec.externalId);
    if (
      earlier === undefined ||
      earlier.remoteUpdatedAt === null ||
      rec.updatedAt === null ||
      rec.updatedAt >= earlier.remoteUpdatedAt
    ) {
      records.set(rec.externalId, toIncoming(rec));
    }
    const at = rec.updatedAt?.getTime();
    if (at !== undefined && (maxUpdatedAtMs === undefined || at > maxUpdatedAtMs)) maxUpdatedAtMs = at;
    deleted.delete(rec.externalId);
  }
  for (const id of page.deleted ?? []) {
    records.delete(id);
    deleted.add(id);
  }
  const pagesThisRun = fold.pagesThisRun + 1;
  if (page.cursor !== undefined && HashSet.has(fold.cursorsSeen, page.cursor)) {
    return Either.left({
      reason: "cursor-repeated",
      message: `cursor "${page.cursor.slice(0, 80)}" repeated after ${pagesThisRun} pages; the read would never end`,
    });
  }
  if (pagesThisRun > maxPages) {
    return Either.left({ reason: "too-many-pages", message: `read exceeded ${maxPages} pages` });
  }
  return Either.right({
    records,
    deleted,
    checkpoint: {
      ...fold.checkpoint,
      cursor: page.cursor,
      pages: fold.checkpoint.pages + 1,
      maxUpdatedAt: maxUpdatedAtMs === undefined ? undefined : iso(maxUpdatedAtMs),
    },
    cursorsSeen: page.cursor === undefined ? fold.cursorsSeen : HashSet.add(fold.cursorsSeen, page.cursor),
    pagesThisRun,
    errors: addItemErrors(fold.errors, errors),
  });
};

/** Records and deletions waiting in the fold's batch. */
export const batchLength = (fold: PageFold) => fold.records.size + fold.deleted.size;

/** The fold's batch, and the fold with an empty batch (the checkpoint and guards go on). */
export const cutBatch = (
  fold: PageFold,
): {
  readonly records: ReadonlyArray<IncomingRecord>;
  readonly deleted: ReadonlyArray<string>;
  readonly fold: PageFold;
} => ({
  records: [...fold.records.values()],
  deleted: [...fold.deleted],
  fold: { ...fold, records: new Map(), deleted: new Set() },
});
