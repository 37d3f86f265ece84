import { Effect, Either } from "effect";
import type {
  ConnectorContext,
  ConnectorError,
  CreateInput,
  DeleteInput,
  EntityDefinition,
  InvalidRecord,
  MaybeEffect,
  UpdateInput,
  WriteResult,
} from "./Connector.ts";
import { isConnectorError } from "./Connector.ts";
import { callConnector, type DecodedRecord, decodeRecord } from "./callConnector.ts";

/*
 * How the engine (and the conformance suite) calls an entity's batch writes: either authoring
 * style, the results checked against the inputs and each written record decoded with the
 * entity's schema.
 */

/** The three batch writes an entity may offer. */
export type BatchWriteKind = "create" | "update" | "delete";

/** The inputs each kind of batch write takes. */
export interface BatchWriteInputs {
  readonly create: ReadonlyArray<CreateInput<any>>;
  readonly update: ReadonlyArray<UpdateInput<any>>;
  readonly delete: ReadonlyArray<DeleteInput>;
}

/** One input's outcome, as the engine settles it. */
export type DecodedWriteResult =
  | {
      readonly ok: true;
      readonly externalId: string;
      /** The record after the write, decoded; undefined for deletes and when the connector did not return it. */
      readonly record: DecodedRecord | undefined;
      /** The record's version after the write (`versionOf`), the next write's `ifVersion`. */
      readonly version: string | undefined;
      /** The written record did not decode: it is not stored, and `get` or the next pull brings it. */
      readonly recordError?: InvalidRecord | undefined;
    }
  | { readonly ok: false; readonly error: ConnectorError };

/** Whether the entity offers this kind of batch write. */
export const hasBatchWrite = (entity: EntityDefinition<any, any>, kind: BatchWriteKind): boolean =>
  typeof entity.write?.batch?.[kind] === "function";

/**
 * The vendor's version of a decoded record, for `ifVersion`: the entity's `version`, by default
 * its `updatedAt` as ISO-8601. Undefined when neither gives one.
 */
export const versionOf = (entity: EntityDefinition<any, any>, record: unknown): string | undefined => {
  if (entity.version !== undefined) return entity.version(record);
  const at = entity.updatedAt(record);
  return at instanceof Date && !Number.isNaN(at.getTime()) ? at.toISOString() : undefined;
};

const contractBroken = (message: string) => new TypeError(`batch write: ${message}`);

/**
 * Calls the entity's batch `kind` with `inputs`: one result per input, in order. A failure of the
 * call means no input was written (see EntityBatchWrite); results that do not answer the inputs
 * one for one, or a success without an id, break the contract and are a defect. A success whose
 * record does not decode stays a success (the vendor did write it) with `recordError`.
 */
export const callBatchWrite = <K extends BatchWriteKind>(
  entity: EntityDefinition<any, any>,
  ctx: ConnectorContext<any>,
  kind: K,
  inputs: BatchWriteInputs[K],
): Effect.Effect<ReadonlyArray<DecodedWriteResult>, ConnectorError> => {
  const write = entity.write?.batch?.[kind] as
    | ((ctx: ConnectorContext<any>, inputs: BatchWriteInputs[K]) => MaybeEffect<ReadonlyArray<WriteResult<unknown>>>)
    | undefined;
  if (write === undefined) return Effect.die(contractBroken(`the entity has no batch ${kind}`));
  if (inputs.length === 0) return Effect.succeed([]);
  return Effect.flatMap(
    callConnector(() => write(ctx, inputs)),
    (results: unknown) => {
      if (!Array.isArray(results) || results.length !== inputs.length) {
        return Effect.die(
          contractBroken(
            `${kind} answered ${Array.isArray(results) ? results.length : "no array of"} results for ${inputs.length} inputs`,
          ),
        );
      }
      const decoded: Array<DecodedWriteResult> = [];
      for (const result of results as ReadonlyArray<unknown>) {
        const r = result as { ok?: unknown; externalId?: unknown; record?: unknown; error?: ConnectorError } | null;
        if (r?.ok === false && isConnectorError(r.error)) {
          decoded.push({ ok: false, error: r.error });
          continue;
        }
        if (r?.ok !== true || typeof r.externalId !== "string" || r.externalId === "") {
          return Effect.die(
            contractBroken(
              `${kind} answered a result that is neither { ok: true, externalId } nor { ok: false, error }`,
            ),
          );
        }
        if (r.record === undefined || kind === "delete") {
          decoded.push({ ok: true, externalId: r.externalId, record: undefined, version: undefined });
          continue;
        }
        const record = decodeRecord(entity, r.record);
        decoded.push(
          Either.isRight(record)
            ? {
                ok: true,
                externalId: record.right.externalId,
                record: record.right,
                version: versionOf(entity, record.right.record),
              }
            : { ok: true, externalId: r.externalId, record: undefined, version: undefined, recordError: record.left },
        );
      }
      return Effect.succeed(decoded);
    },
  );
};
