import { type DecodedRecord, decodeRecord, sourceStream } from "@tandem/connector-sdk/runtime";
import { Chunk, Effect, Either, Stream } from "effect";
import { pageOf } from "../pageContract.ts";
import type { ResolvedEntity } from "../ResolvedEntity.ts";
import { invalidPage } from "../ResolvedEntity.ts";
import type { SyncRunError } from "../SyncRun.ts";

/**
 * Every record the vendor has of the entity, decoded, read in full through the entity's `read`
 * and written nowhere (matching and the plan compare them with the store). A record that does
 * not decode is skipped (a pull reports it); a broken page or a repeating cursor fails the read.
 */
export const readVendorRecords = (r: ResolvedEntity): Effect.Effect<ReadonlyArray<DecodedRecord>, SyncRunError> => {
  const cursors = new Set<string>();
  return sourceStream(() => r.entity.read(r.ctx, { since: undefined, cursor: undefined })).pipe(
    Stream.mapEffect((raw) =>
      Effect.flatMap(pageOf(r, raw), (page) => {
        if (page.cursor !== undefined && page.cursor !== null) {
          if (cursors.has(page.cursor)) return Effect.fail(invalidPage(r, `cursor "${page.cursor}" repeated`));
          cursors.add(page.cursor);
        }
        return Effect.succeed(page.records);
      }),
    ),
    Stream.flattenIterables,
    Stream.filterMap((raw) => Either.getRight(decodeRecord(r.entity, raw))),
    Stream.runCollect,
    Effect.map(Chunk.toReadonlyArray),
  );
};
