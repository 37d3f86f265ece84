import { Conflict, type ConnectorError } from "@tandem/connector-sdk";
import {
  type BatchWriteInputs,
  callBatchWrite,
  callConnector,
  type DecodedRecord,
  type DecodedWriteResult,
  decodeRecord,
  hasBatchWrite,
  versionOf,
} from "@tandem/connector-sdk/runtime";
import { Chunk, Effect, Either } from "effect";
import type { PushOperation } from "../../db/schema.ts";
import { type ResolvedEntity, unsupported } from "../ResolvedEntity.ts";
import type { EntityNotSupported } from "../SyncRun.ts";

/** One record of a group to write. */
export interface PushItem {
  /** The record's external id (for a create, the provisional one: the vendor assigns the real one). */
  readonly externalId: string;
  /** In the record's type: all its fields for a create, its unpushed changes for an update, none for a delete. */
  readonly fields: Record<string, unknown>;
  /**
   * The vendor's version of the record the change was made against (its `base`), for an update or
   * a delete: the write happens only if the vendor's record is still at it. Undefined: unconditional.
   */
  readonly ifVersion?: string | undefined;
}

/** What became of one item of a group. */
export type PushOutcome =
  /**
   * The vendor took it. `remote`: the record as it now is, decoded (undefined for a delete, or
   * when the vendor's answer did not carry it and it could not be read back); `externalId`: the
   * vendor's id (for a create, the one it assigned) where known; `recordError`: the vendor's
   * answer did not match the schema.
   */
  | {
      readonly _tag: "Written";
      readonly externalId: string | undefined;
      readonly remote: DecodedRecord | undefined;
      readonly recordError?: string | undefined;
    }
  | { readonly _tag: "Failed"; readonly error: ConnectorError | EntityNotSupported };

/** Writes one group, one outcome per item, in the items' order. */
export type GroupWriter = (
  r: ResolvedEntity,
  operation: PushOperation,
  items: ReadonlyArray<PushItem>,
) => Effect.Effect<ReadonlyArray<PushOutcome>>;

const failed = (error: ConnectorError | EntityNotSupported): PushOutcome => ({ _tag: "Failed", error });

/** The vendor's answer to a single create or update, decoded. */
const writtenFrom = (r: ResolvedEntity, raw: unknown): PushOutcome => {
  const decoded = decodeRecord(r.entity, raw);
  return Either.isRight(decoded)
    ? { _tag: "Written", externalId: decoded.right.externalId, remote: decoded.right }
    : { _tag: "Written", externalId: undefined, remote: undefined, recordError: decoded.left.message };
};

/** One item through the entity's single write of the operation. */
const writeOne = (r: ResolvedEntity, operation: PushOperation, item: PushItem): Effect.Effect<PushOutcome> => {
  const write = r.entity.write;
  const options = item.ifVersion === undefined ? undefined : { ifVersion: item.ifVersion };
  const call = (): Effect.Effect<PushOutcome, ConnectorError | EntityNotSupported> => {
    switch (operation) {
      case "create": {
        const create = write?.create;
        return create === undefined
          ? Effect.fail(unsupported(r, "the entity has no write.create"))
          : Effect.map(
              callConnector(() => create(r.ctx, item.fields)),
              (raw) => writtenFrom(r, raw),
            );
      }
      case "update": {
        const update = write?.update;
        return update === undefined
          ? Effect.fail(unsupported(r, "the entity has no write.update"))
          : Effect.map(
              callConnector(() => update(r.ctx, item.externalId, item.fields, options)),
              (raw) => writtenFrom(r, raw),
            );
      }
      case "delete": {
        const remove = write?.delete;
        const written: PushOutcome = { _tag: "Written", externalId: item.externalId, remote: undefined };
        return remove === undefined
          ? Effect.fail(unsupported(r, "the entity has no write.delete"))
          : callConnector(() => remove(r.ctx, item.externalId, options)).pipe(
              Effect.as(written),
              // Gone already: what the delete wanted.
              Effect.catchTag("NotFound", () => Effect.succeed(written)),
            );
      }
    }
  };
  return call().pipe(Effect.catchAll((error) => Effect.succeed(failed(error))));
};

/** The inputs of a batch write of the operation. */
const batchInputs = (operation: PushOperation, items: ReadonlyArray<PushItem>): BatchWriteInputs[PushOperation] => {
  switch (operation) {
    case "create":
      return items.map((item) => ({ record: item.fields }));
    case "update":
      return items.map((item) => ({ id: item.externalId, changes: item.fields, ifVersion: item.ifVersion }));
    case "delete":
      return items.map((item) => ({ id: item.externalId, ifVersion: item.ifVersion }));
  }
};

const outcomeOf = (operation: PushOperation, item: PushItem, result: DecodedWriteResult): PushOutcome => {
  if (!result.ok) {
    // Gone already: what the delete wanted.
    if (operation === "delete" && result.error._tag === "NotFound") {
      return { _tag: "Written", externalId: item.externalId, remote: undefined };
    }
    return failed(result.error);
  }
  return {
    _tag: "Written",
    externalId: result.externalId,
    remote: operation === "delete" ? undefined : result.record,
    recordError: result.recordError?.message,
  };
};

/** One chunk (at most `maxPerRequest` items) through the entity's batch write of the operation. */
const writeChunk = (
  r: ResolvedEntity,
  operation: PushOperation,
  items: ReadonlyArray<PushItem>,
): Effect.Effect<ReadonlyArray<PushOutcome>> =>
  callBatchWrite(r.entity, r.ctx, operation, batchInputs(operation, items)).pipe(
    Effect.map((results) => results.map((result, i) => outcomeOf(operation, items[i]!, result))),
    // The call failed as a whole: nothing of it was written (see EntityBatchWrite).
    Effect.catchAll((error) => Effect.succeed(items.map(() => failed(error)))),
  );

/**
 * Reads back, by id, the records a batch wrote without answering them (Salesforce's collections
 * answer ids only): the stored copy then holds the vendor's record and its version, which the
 * next conditional write needs. A record that cannot be read back stays without (the next pull
 * brings it).
 */
const readBack = (r: ResolvedEntity, outcomes: Array<PushOutcome>) =>
  Effect.gen(function* () {
    const missing = outcomes.flatMap((o, i) =>
      o._tag === "Written" && o.remote === undefined && o.recordError === undefined && o.externalId !== undefined
        ? [{ i, id: o.externalId }]
        : [],
    );
    const { get, getMany } = r.entity;
    if (missing.length === 0 || (get === undefined && getMany === undefined)) return;
    const raws: ReadonlyArray<unknown> =
      getMany !== undefined
        ? yield* callConnector(() =>
            getMany(
              r.ctx,
              missing.map((m) => m.id),
            ),
          ).pipe(Effect.orElseSucceed(() => []))
        : yield* Effect.forEach(missing, (m) =>
            callConnector(() => get!(r.ctx, m.id)).pipe(Effect.orElseSucceed(() => undefined)),
          );
    const byId = new Map<string, DecodedRecord>();
    for (const raw of Array.isArray(raws) ? raws : []) {
      if (raw === undefined || raw === null) continue;
      const decoded = decodeRecord(r.entity, raw);
      if (Either.isRight(decoded)) byId.set(decoded.right.externalId, decoded.right);
    }
    for (const m of missing) {
      const remote = byId.get(m.id);
      if (remote !== undefined) outcomes[m.i] = { _tag: "Written", externalId: m.id, remote };
    }
  });

/**
 * Where the entity is not `conditional` (its writes ignore `ifVersion`), the engine compares the
 * versions itself just before writing an update or a delete: the records are read by id, and one
 * whose version moved past the item's `ifVersion` fails with a version Conflict instead of being
 * written (the drain then merges it, or settles a delete by the delete-against-edit rule).
 *
 * No lock is held from this read to the write, by design. A record lock is ours alone: it cannot
 * stop a remote edit landing between the read and the write (a round trip of race at the vendor,
 * which only a vendor's own conditional write closes), and holding it over vendor round trips
 * would stall, then refuse, the host's edits for as long as the vendor takes. What it would
 * protect, a local change made while the write is in flight, the settlement protects instead:
 * it applies only if the record is still at the version the push was read at, and otherwise keeps
 * the newer change, rebased on the vendor's answer, for the next conditional write (see
 * `rebaseMoved` in store/RecordRows.ts). Answers the outcomes decided already (by index).
 */
const compareVersions = (
  r: ResolvedEntity,
  operation: PushOperation,
  items: ReadonlyArray<PushItem>,
): Effect.Effect<ReadonlyMap<number, PushOutcome>> =>
  Effect.gen(function* () {
    const decided = new Map<number, PushOutcome>();
    const { get, getMany } = r.entity;
    if (operation === "create" || r.entity.write?.conditional === true) return decided;
    if (get === undefined && getMany === undefined) return decided;
    const checked = items.flatMap((item, i) => (item.ifVersion === undefined ? [] : [{ i, item }]));
    if (checked.length === 0) return decided;
    // A version that cannot be read is not compared away: the item fails with the read's error
    // (and is retried), never written blind. A record that is gone fails at its write (NotFound).
    const current = new Map<string, string | undefined>();
    const unread = new Map<string, ConnectorError>();
    const remember = (raw: unknown) => {
      if (raw === undefined || raw === null) return;
      const decoded = decodeRecord(r.entity, raw);
      if (Either.isRight(decoded)) current.set(decoded.right.externalId, versionOf(r.entity, decoded.right.record));
    };
    if (getMany !== undefined) {
      const ids = checked.map((c) => c.item.externalId);
      const read = yield* Effect.either(callConnector(() => getMany(r.ctx, ids)));
      if (Either.isLeft(read)) for (const id of ids) unread.set(id, read.left);
      else for (const raw of Array.isArray(read.right) ? read.right : []) remember(raw);
    } else {
      for (const c of checked) {
        const read = yield* Effect.either(callConnector(() => get!(r.ctx, c.item.externalId)));
        if (Either.isRight(read)) remember(read.right);
        else if (read.left._tag !== "NotFound") unread.set(c.item.externalId, read.left);
      }
    }
    for (const { i, item } of checked) {
      const error = unread.get(item.externalId);
      if (error !== undefined) decided.set(i, failed(error));
    }
    for (const { i, item } of checked) {
      const now = current.get(item.externalId);
      if (!decided.has(i) && now !== undefined && now !== item.ifVersion) {
        decided.set(
          i,
          failed(
            new Conflict({
              message: `the record changed at the vendor since version ${item.ifVersion} (now ${now})`,
              externalId: item.externalId,
              reason: "version",
            }),
          ),
        );
      }
    }
    return decided;
  });

/**
 * The drain's writer: one group is the due entries of one connection x entity x operation. Where
 * the entity offers a batch write of the operation and the group has more than one item, the
 * group goes in chunks of the vendor's `maxPerRequest`, `concurrency` chunks at a time, each
 * result mapped to its item's outcome; otherwise each item goes through the entity's single
 * write, `concurrency` at a time. One item's failure is its own outcome, never the group's.
 * Updates and deletes carry their `ifVersion` (see `compareVersions` for entities that ignore it).
 */
export const groupWrites =
  (concurrency: number): GroupWriter =>
  (r, operation, items) =>
    Effect.gen(function* () {
      const decided = yield* compareVersions(r, operation, items);
      // `ifVersion` goes to the vendor only where the entity honours it (compared above otherwise).
      const conditional = r.entity.write?.conditional === true;
      const pending = items.flatMap((item, i) =>
        decided.has(i) ? [] : [{ i, item: conditional ? item : { ...item, ifVersion: undefined } }],
      );
      const outcomes: Array<PushOutcome> = items.map((_, i) => decided.get(i)!);
      const toWrite = pending.map((p) => p.item);
      const batched = toWrite.length > 1 && hasBatchWrite(r.entity, operation);
      const written: ReadonlyArray<PushOutcome> = batched
        ? (yield* Effect.forEach(
            Chunk.chunksOf(Chunk.fromIterable(toWrite), Math.max(1, r.entity.write!.batch!.maxPerRequest)),
            (chunk) => writeChunk(r, operation, Chunk.toReadonlyArray(chunk)),
            { concurrency },
          )).flat()
        : yield* Effect.forEach(toWrite, (item) => writeOne(r, operation, item), { concurrency });
      pending.forEach((p, k) => {
        outcomes[p.i] = written[k]!;
      });
      if (batched) yield* readBack(r, outcomes);
      return outcomes;
    });
