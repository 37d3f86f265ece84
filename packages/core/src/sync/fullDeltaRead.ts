import { Unavailable } from "@tandem/connector-sdk";
import { decodeRecord, sourceStream } from "@tandem/connector-sdk/runtime";
import { Clock, Effect, Either, Stream } from "effect";
import { remoteDeletesMeetEdits } from "../store/deletesAgainstEdits.ts";
import type { Checkpoint, IncomingRecord } from "../store/RecordStore.ts";
import { itemErrorList } from "./itemErrors.ts";
import { type PullSettlementDeps, upsertPulled } from "./PullSettlement.ts";
import { splitForWriting, startBatchWriter } from "./pageBatching.ts";
import { pageOf } from "./pageContract.ts";
import { batchLength, cutBatch, foldPage, type PageFold, startPageFold } from "./pageFold.ts";
import { invalidPage, type ResolvedEntity } from "./ResolvedEntity.ts";
import type { SyncRunOptions } from "./SyncRun.ts";

const iso = (ms: number) => new Date(ms).toISOString();

export const pageTimeout = (options: SyncRunOptions) => options.pageTimeoutMs ?? 300_000;

/** A batch handed to the writer, with the read's progress when it was cut. */
interface PageBatch {
  readonly records: ReadonlyArray<IncomingRecord>;
  readonly deleted: ReadonlyArray<string>;
  /** Saved with the batch; null on the last one (the run is over: the checkpoint is cleared). */
  readonly checkpoint: Checkpoint | null;
  readonly pages: number;
  readonly errors: number;
}

/** What the batches written so far did. */
interface WrittenTotals {
  readonly created: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly deleted: number;
  /** Reported deletions the mass-deletion guard held for review (the records stay live). */
  readonly quarantined: number;
}

const nothingWritten: WrittenTotals = { created: 0, updated: 0, unchanged: 0, deleted: 0, quarantined: 0 };

const batchOf = (fold: PageFold, checkpoint: Checkpoint | null) => {
  const cut = cutBatch(fold);
  const batch: PageBatch = {
    records: cut.records,
    deleted: cut.deleted,
    checkpoint,
    pages: fold.pagesThisRun,
    errors: itemErrorList(fold.errors).length,
  };
  return { batch, fold: cut.fold };
};

/**
 * Writes one batch: its deletions (through the mass-deletion guard), its records (split across
 * connections when large), its checkpoint. `releaseSeen`: the entity has deletions in the review
 * queue (or records kept by a rejection), and the records of each batch, seen live, release theirs.
 */
const writeBatch =
  (
    deps: PullSettlementDeps,
    r: ResolvedEntity,
    mode: "full" | "delta",
    options: SyncRunOptions,
    releaseSeen: boolean,
  ) =>
  (batch: PageBatch, before: WrittenTotals) =>
    Effect.gen(function* () {
      const checkpoint = { mode, value: batch.checkpoint };
      // Deletions first, so the checkpoint (saved with the upsert) never passes a
      // page whose deletions were not applied (or queued for review).
      const guarded =
        batch.deleted.length > 0
          ? yield* deps.quarantine.guardDeletes(
              r.scope,
              yield* remoteDeletesMeetEdits(deps.db, r.scope, r.settings.deleteAgainstEdit, batch.deleted),
              {
                source: mode,
                maxDeletions: options.maxDeletions,
                windowMinutes: options.deletionWindowMinutes,
                allowMassDeletion: options.allowMassDeletion,
              },
            )
          : { deleted: [], quarantined: 0 };
      const parts = splitForWriting(batch.records, options.writeConcurrency ?? 2);
      const results = yield* Effect.forEach(
        parts,
        // One part: its statement saves the checkpoint too. Several: their ids are
        // distinct (the batch is keyed by id), so they cannot race each other, and
        // the checkpoint waits for all of them (a crash in between re-reads the page).
        (part) =>
          upsertPulled(
            deps,
            r.scope,
            r.entity.conflictPolicy,
            part,
            parts.length === 1 ? checkpoint : undefined,
            r.settings.deleteAgainstEdit,
          ),
        { concurrency: "unbounded" },
      );
      if (parts.length > 1) yield* deps.store.upsert(r.scope, [], { checkpoint });
      if (releaseSeen) {
        yield* deps.quarantine.releaseSeen(
          r.scope,
          batch.records.map((record) => record.externalId),
        );
      }
      const totals: WrittenTotals = {
        created: before.created + results.reduce((n, result) => n + result.created.length, 0),
        updated: before.updated + results.reduce((n, result) => n + result.updated.length, 0),
        unchanged: before.unchanged + results.reduce((n, result) => n + result.unchanged, 0),
        deleted: before.deleted + guarded.deleted.length,
        quarantined: before.quarantined + guarded.quarantined,
      };
      if (options.onProgress !== undefined) {
        const { quarantined: _quarantined, ...counts } = totals;
        yield* options.onProgress({
          phase: batch.checkpoint === null ? "done" : "reading",
          pages: batch.pages,
          ...counts,
          errors: batch.errors,
        });
      }
      return totals;
    });

/**
 * Full and delta: stream pages, fold them into batches (see pageFold), and write each batch
 * with its checkpoint while the next pages are read. A run resumes from the checkpoint of an
 * interrupted run of the same mode.
 */
export const readFullOrDelta = (
  deps: PullSettlementDeps,
  r: ResolvedEntity,
  mode: "full" | "delta",
  options: SyncRunOptions,
) =>
  Effect.gen(function* () {
    const batchSize = Math.max(1, options.batchSize ?? 500);
    const maxPages = options.maxPages ?? 1_000_000;
    const startedMs = yield* Clock.currentTimeMillis;
    const stored = yield* deps.store.cursor(r.scope);
    const resume = stored?.checkpoints[mode];
    const since =
      mode === "full"
        ? undefined
        : resume !== undefined
          ? resume.since
          : stored?.deltaCursor
            ? iso(stored.deltaCursor.getTime() - (options.overlapMs ?? 300_000))
            : undefined;
    const start: Checkpoint = resume ?? {
      mode,
      cursor: undefined,
      since,
      startedAt: iso(startedMs),
      maxUpdatedAt: undefined,
      pages: 0,
    };
    const decode = (raw: unknown) => decodeRecord(r.entity, raw);
    const releaseSeen = yield* deps.quarantine.hasOpenRows(r.scope);
    const writer = yield* startBatchWriter(nothingWritten, writeBatch(deps, r, mode, options, releaseSeen));

    const read = yield* sourceStream(() =>
      r.entity.read(r.ctx, {
        since: start.since === undefined ? undefined : new Date(start.since),
        cursor: start.cursor,
      }),
    ).pipe(
      Stream.timeoutFail(
        () =>
          new Unavailable({
            message: `${r.connector.name}/${r.scope.entity}: no page within ${pageTimeout(options)} ms`,
          }),
        pageTimeout(options),
      ),
      // Read the next page while this one is written: HTTP and Postgres overlap, and
      // memory stays bounded (two pages ahead at most).
      Stream.buffer({ capacity: 2 }),
      Stream.runFoldEffect(startPageFold(start, options.maxItemErrors ?? 1_000), (fold, raw) =>
        Effect.gen(function* () {
          const folded = foldPage(fold, yield* pageOf(r, raw), decode, maxPages);
          if (Either.isLeft(folded)) return yield* invalidPage(r, folded.left.message);
          if (batchLength(folded.right) < batchSize) return folded.right;
          const { batch, fold: next } = batchOf(folded.right, folded.right.checkpoint);
          yield* writer.write(batch);
          return next;
        }),
      ),
      // When the read fails or is cancelled, the batch already handed to the database
      // still lands with its checkpoint: a retry resumes after it instead of re-reading it.
      Effect.onExit((exit) => (exit._tag === "Success" ? Effect.void : writer.settle)),
    );
    // The last batch and the cleared checkpoint go in one statement.
    const { quarantined, ...written } = yield* writer.finish(batchOf(read, null).batch);
    // Never "now at the end": a record changed while this run was in flight has an
    // updatedAt after what we saw (or after our start) and the next delta reads it.
    const candidate = read.checkpoint.maxUpdatedAt ?? read.checkpoint.startedAt;
    const previous = stored?.deltaCursor?.toISOString();
    const deltaCursor = previous !== undefined && previous > candidate ? previous : candidate;
    yield* deps.store.saveCursor(r.scope, {
      deltaCursor: new Date(deltaCursor),
      ...(mode === "full" ? { lastFullAt: new Date(startedMs) } : { lastDeltaAt: new Date(startedMs) }),
    });
    return {
      ...written,
      ...(quarantined > 0 ? { quarantined } : {}),
      errors: itemErrorList(read.errors),
      pages: read.pagesThisRun,
      resumed: resume !== undefined,
      deltaCursor,
    };
  });
