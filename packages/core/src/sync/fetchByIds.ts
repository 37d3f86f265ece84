import { callConnector, type DecodedRecord, decodeRecord } from "@tandem/connector-sdk/runtime";
import { Effect, Either } from "effect";
import { itemError } from "./itemErrors.ts";
import { type PullSettlementDeps, toIncoming, upsertPulled } from "./PullSettlement.ts";
import { type ResolvedEntity, unsupported } from "./ResolvedEntity.ts";
import type { SyncItemError } from "./SyncJob.ts";

/** Whether the entity can fetch records by id at all (`getMany` or `get`). */
export const canFetchByIds = (r: ResolvedEntity): boolean =>
  r.entity.getMany !== undefined || r.entity.get !== undefined;

/** Raw records by id: one `getMany` call (a vendor batch read), or `get` per id, `concurrency` at a time. */
const fetchRaw = (r: ResolvedEntity, ids: ReadonlyArray<string>, concurrency: number, errors: Array<SyncItemError>) =>
  Effect.gen(function* () {
    const { get, getMany } = r.entity;
    if (getMany !== undefined) {
      const raws = yield* callConnector(() => getMany(r.ctx, ids)).pipe(
        Effect.catchTags({
          NotFound: () => Effect.succeed([] as ReadonlyArray<unknown>),
          // The whole batch refused: each id is reported, none stored.
          InvalidRecord: (e) =>
            Effect.sync(() => {
              for (const id of ids) errors.push(itemError(e, id));
              return [] as ReadonlyArray<unknown>;
            }),
        }),
      );
      if (!Array.isArray(raws)) {
        return yield* Effect.die(new TypeError(`${r.connector.name}.${r.scope.entity}.getMany must return an array`));
      }
      return raws.map((raw) => ({ raw, id: undefined as string | undefined }));
    }
    if (get === undefined) return yield* unsupported(r, "the entity has no get(id) or getMany(ids)");
    const found: Array<{ raw: unknown; id: string | undefined }> = [];
    yield* Effect.forEach(
      ids,
      (id) =>
        callConnector(() => get(r.ctx, id)).pipe(
          Effect.flatMap((raw) =>
            Effect.sync(() => {
              if (raw !== null && raw !== undefined) found.push({ raw, id });
            }),
          ),
          Effect.catchTags({
            NotFound: () => Effect.void,
            InvalidRecord: (e) => Effect.sync(() => errors.push(itemError(e, id))),
          }),
        ),
      { concurrency, discard: true },
    );
    return found;
  });

/**
 * Fetches records by id (`getMany` where the entity has it, else `get` per id), decodes them and
 * upserts them in one batch through the pull settlement (unpushed local edits are settled three-way,
 * as for any pull). Ids that no longer exist remotely are skipped; a record that does not decode
 * is an item error.
 */
export const fetchAndStore = (
  deps: PullSettlementDeps,
  r: ResolvedEntity,
  ids: ReadonlyArray<string>,
  concurrency: number,
) =>
  Effect.gen(function* () {
    const errors: Array<SyncItemError> = [];
    const found: Array<DecodedRecord> = [];
    for (const { raw, id } of yield* fetchRaw(r, ids, concurrency, errors)) {
      const decoded = decodeRecord(r.entity, raw);
      if (Either.isLeft(decoded)) errors.push(itemError(decoded.left, id ?? decoded.left.externalId));
      else found.push(decoded.right);
    }
    const unique = [...new Map(found.map((f) => [f.externalId, f])).values()].map(toIncoming);
    const result = yield* upsertPulled(
      deps,
      r.scope,
      r.entity.conflictPolicy,
      unique,
      undefined,
      r.settings.deleteAgainstEdit,
    );
    return { result, errors };
  });
