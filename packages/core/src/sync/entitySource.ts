import { decodeRecord, sourceStream } from "@tandem/connector-sdk/runtime";
import { Effect, Either, Option, Stream } from "effect";
import { pageOf } from "./pageContract.ts";
import { invalidPage, type ResolveEntityDeps, resolveEntity } from "./ResolvedEntity.ts";
import type { InvalidPage, SyncRunError, SyncTarget } from "./SyncRun.ts";

/**
 * The connector entity's records, decoded, as a Stream: the source of a SyncJob whose sink is
 * the user's own tables. A record that fails to decode is logged and skipped; a broken page
 * (or a cursor that repeats) fails the stream.
 */
export const entitySource = (
  deps: ResolveEntityDeps,
  target: SyncTarget,
  options: { readonly since?: Date },
): Stream.Stream<unknown, SyncRunError> =>
  Stream.unwrapScoped(
    Effect.map(resolveEntity(deps, target), (r) => {
      const cursors = new Set<string>();
      return sourceStream(() => r.entity.read(r.ctx, { since: options.since, cursor: undefined })).pipe(
        Stream.mapEffect((raw) =>
          Effect.flatMap(pageOf(r, raw), (page): Effect.Effect<ReadonlyArray<unknown>, InvalidPage> => {
            if (page.cursor !== undefined) {
              if (cursors.has(page.cursor)) return Effect.fail(invalidPage(r, `cursor "${page.cursor}" repeated`));
              cursors.add(page.cursor);
            }
            return Effect.succeed(page.records);
          }),
        ),
        Stream.flattenIterables,
        Stream.mapEffect((raw): Effect.Effect<Option.Option<unknown>> => {
          const decoded = decodeRecord(r.entity, raw);
          return Either.isRight(decoded)
            ? Effect.succeed(Option.some(decoded.right.record))
            : Effect.as(
                Effect.logWarning("skipping a record that does not decode", {
                  externalId: decoded.left.externalId,
                  error: decoded.left.message,
                }),
                Option.none(),
              );
        }),
        Stream.filterMap((o) => o),
      );
    }),
  );
