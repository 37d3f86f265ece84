import { type DecodedRecord, decodeRecord } from "@tandem/connector-sdk/runtime";
import { Chunk, Clock, type Context, Effect, Either, Stream } from "effect";
import type { Database } from "../db/Database.ts";
import type { RecordStoreService } from "../store/RecordStore.ts";
import type { Connections } from "../tenancy/Connections.ts";
import { itemError } from "./itemErrors.ts";
import { toIncoming } from "./PullSettlement.ts";
import { noSuchEntity } from "./ResolvedEntity.ts";
import type { SyncItemError } from "./SyncJob.ts";
import type { ImportOptions, ImportResult, SyncTarget } from "./SyncRun.ts";

export interface ImportRecordsDeps {
  readonly db: Context.Tag.Service<Database>;
  readonly store: RecordStoreService;
  readonly connections: Context.Tag.Service<Connections>;
}

/**
 * Imports records given by the caller: batched, validated concurrently, and committed at the
 * end in one transaction (all or nothing, unless `onInvalid: "skip-invalid"`).
 */
export const importRecords = (
  deps: ImportRecordsDeps,
  target: SyncTarget,
  records: Iterable<unknown> | AsyncIterable<unknown>,
  options: ImportOptions,
) =>
  Effect.gen(function* () {
    const startedMs = yield* Clock.currentTimeMillis;
    const batchSize = Math.max(1, options.batchSize ?? 500);
    const { connector } = yield* deps.connections.resolve(target.tenantId, target.connectionId);
    const definition = connector.entities[target.entity];
    if (definition === undefined) return yield* noSuchEntity(connector, target.entity);
    const source =
      Symbol.asyncIterator in (records as object)
        ? Stream.fromAsyncIterable(records as AsyncIterable<unknown>, (e) => e).pipe(Stream.orDie)
        : Stream.fromIterable(records as Iterable<unknown>);
    // Validate batches in parallel; nothing is written until every batch is checked.
    const validated = yield* source.pipe(
      Stream.grouped(batchSize),
      Stream.mapEffect(
        (batch) =>
          Effect.sync(() => {
            const ok: Array<DecodedRecord> = [];
            const errors: Array<SyncItemError> = [];
            for (const raw of Chunk.toReadonlyArray(batch)) {
              const decoded = decodeRecord(definition, raw);
              if (Either.isLeft(decoded)) errors.push(itemError(decoded.left, decoded.left.externalId));
              else ok.push(decoded.right);
            }
            return { ok, errors };
          }),
        { concurrency: options.concurrency ?? 4 },
      ),
      Stream.runCollect,
    );
    const batches = Chunk.toReadonlyArray(validated);
    const errors = batches.flatMap((b) => b.errors);
    const seen = new Set<string>();
    const valid: Array<DecodedRecord> = [];
    for (const rec of batches.flatMap((b) => b.ok)) {
      if (seen.has(rec.externalId)) {
        errors.push({ externalId: rec.externalId, type: "InvalidRecord", message: "duplicate id in the import" });
        continue;
      }
      seen.add(rec.externalId);
      valid.push(rec);
    }
    const commit = errors.length === 0 || options.onInvalid === "skip-invalid";
    const counts = { created: 0, updated: 0, unchanged: 0 };
    if (commit) {
      yield* deps.db.transaction(
        Effect.forEach(
          Chunk.toReadonlyArray(Chunk.chunksOf(Chunk.fromIterable(valid), batchSize)),
          (batch) =>
            Effect.map(deps.store.upsert(target, Chunk.toReadonlyArray(batch).map(toIncoming)), (res) => {
              counts.created += res.created.length;
              counts.updated += res.updated.length;
              counts.unchanged += res.unchanged;
            }),
          { discard: true },
        ),
      );
    }
    return {
      name: `${target.connectionId}/${target.entity}`,
      ...counts,
      deleted: 0,
      errors,
      committed: commit,
      batches: batches.length,
      durationMs: (yield* Clock.currentTimeMillis) - startedMs,
    } satisfies ImportResult;
  });
