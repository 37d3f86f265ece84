import {
  AuthExpired,
  type ConnectorError,
  type EncodedRecord,
  NotFound,
  RateLimited,
  shapeMismatch,
  Unavailable,
  type WriteResult,
  writeFailed,
  writeInChunks,
  written,
} from "@tandem/connector-sdk";
import { Schema } from "effect";
import {
  apiRoot,
  type BusinessCentralContext,
  businessCentralRequest,
  type EntitySet,
  type EntitySpec,
  failureOf,
  isGuid,
} from "./client.ts";
import { BatchResponseWire } from "./wire.ts";

/*
 * Batch writes over `$batch` (OData's JSON batch format), up to 100 operations a request, each
 * answered on its own: one refused operation leaves the others done (no `Isolation: snapshot`).
 * Updates and deletes carry their own `If-Match`: the input's `ifVersion` (the etag the change
 * was made against), so an entity changed since answers 409 Request_EntityChanged, a version
 * Conflict, and is not written; without `ifVersion`, `If-Match: *` writes whatever the version.
 * See https://learn.microsoft.com/dynamics365/business-central/dev-itpro/webservices/use-odata-batch
 */

/** Operations one `$batch` request may carry (Business Central's limit). */
export const batchMax = 100;

/** Normalized fields mapped to the entity set's properties. */
export type EntityBody = Readonly<Record<string, unknown>>;

export interface EntityUpdate {
  readonly id: string;
  readonly body: EntityBody;
  readonly ifVersion?: string | undefined;
}

export interface EntityDelete {
  readonly id: string;
  readonly ifVersion?: string | undefined;
}

interface Operation {
  readonly method: "POST" | "PATCH" | "DELETE";
  /** Relative to the API root: `companies({id})/items` or `companies({id})/items({id})`. */
  readonly url: string;
  readonly ifMatch?: string;
  readonly body?: EntityBody;
}

interface OperationAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
}

const entitySetPath = (ctx: BusinessCentralContext, spec: { readonly entitySet: EntitySet }) =>
  `companies(${encodeURIComponent(ctx.config.companyId)})/${spec.entitySet}`;

/**
 * One `$batch` request: the answer of each operation, in the operations' order. A status of the
 * whole request other than 200 fails all of them (thrown: nothing was done).
 */
const sendBatch = async (
  ctx: BusinessCentralContext,
  operations: ReadonlyArray<Operation>,
): Promise<ReadonlyArray<OperationAnswer | undefined>> => {
  const response = await businessCentralRequest(ctx, {
    method: "POST",
    url: `${apiRoot(ctx.config)}/$batch`,
    headers: { accept: "application/json" },
    body: {
      requests: operations.map((op, i) => ({
        id: String(i),
        method: op.method,
        url: op.url,
        headers: {
          ...(op.body !== undefined ? { "content-type": "application/json" } : {}),
          ...(op.ifMatch !== undefined ? { "if-match": op.ifMatch } : {}),
        },
        ...(op.body !== undefined ? { body: op.body } : {}),
      })),
    },
  });
  if (response.status !== 200) throw failureOf(response);
  const parsed = decodeBatch(response);
  const answers = new Map(parsed.responses.map((r) => [r.id, r]));
  return operations.map((_, i) => {
    const answer = answers.get(String(i));
    return answer === undefined
      ? undefined
      : { status: answer.status, headers: new Headers(answer.headers ?? {}), body: answer.body };
  });
};

const decodeBatchResponse = Schema.decodeUnknownEither(BatchResponseWire);

const decodeBatch = (response: { readonly status: number; readonly body: unknown }) => {
  const decoded = decodeBatchResponse(response.body);
  if (decoded._tag === "Left") {
    throw new Unavailable({ message: `$batch: ${shapeMismatch(decoded.left)}`, status: response.status });
  }
  return decoded.right;
};

/**
 * An operation's failure: what `ctx.http` maps for whole requests (401, 429 with Retry-After,
 * 5xx) mapped here for the operation, the rest as `failureOf` maps it (409 Request_EntityChanged
 * a version Conflict, 400 InvalidRecord, 404 NotFound).
 */
const operationFailure = (answer: OperationAnswer | undefined, externalId?: string): ConnectorError => {
  if (answer === undefined)
    return new Unavailable({ message: "Business Central answered no response for this operation" });
  if (answer.status === 401) return new AuthExpired({ message: "Business Central 401 in a $batch operation" });
  if (answer.status === 429) {
    const seconds = Number(answer.headers.get("retry-after"));
    return new RateLimited({ retryAfterMs: Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 1_000 });
  }
  return failureOf(answer, externalId);
};

/**
 * A written entity from an operation's body, in its encoded form as reads yield it (the engine
 * decodes it in one pass), or a success without it when the body is not such an entity.
 */
const writtenEntity = <Rec extends { readonly id: string }, Encoded, Wire>(
  spec: EntitySpec<Rec, Encoded, Wire>,
  id: string | undefined,
  body: unknown,
): WriteResult<Rec> => {
  const wire = Schema.decodeUnknownEither(spec.wire)(body);
  if (wire._tag === "Right") {
    const encoded = spec.toRecord(wire.right) as EncodedRecord;
    if (typeof encoded.id === "string" && encoded.id !== "") return written<Rec>(encoded.id, encoded);
  }
  const raw = (body as { id?: unknown } | null)?.id;
  const externalId = id ?? (typeof raw === "string" ? raw : undefined);
  return externalId === undefined
    ? writeFailed(
        new Unavailable({ message: `Business Central answered a created ${spec.entitySet} entity without an id` }),
      )
    : written<Rec>(externalId);
};

/** Creates entities, 100 operations a `$batch`; each result is the entity BC answers (201). */
export const createEntities = <Rec extends { readonly id: string }, Encoded, Wire>(
  ctx: BusinessCentralContext,
  spec: EntitySpec<Rec, Encoded, Wire>,
  inputs: ReadonlyArray<EntityBody>,
): Promise<ReadonlyArray<WriteResult<Rec>>> =>
  writeInChunks(inputs, batchMax, async (chunk) => {
    const answers = await sendBatch(
      ctx,
      chunk.map((body) => ({ method: "POST", url: entitySetPath(ctx, spec), body })),
    );
    return answers.map(
      (answer): WriteResult<Rec> =>
        answer !== undefined && (answer.status === 201 || answer.status === 200)
          ? writtenEntity(spec, undefined, answer.body)
          : writeFailed(operationFailure(answer)),
    );
  });

/**
 * One `$batch` of operations on existing entities, answered in the chunk's order. A key that is no
 * GUID cannot exist (BC would answer 400 for the whole operation): it is not sent, and `absent`
 * says what it becomes; every other input is settled from its operation's answer.
 */
const sendToExisting = async <Input extends { readonly id: string }, Result>(
  ctx: BusinessCentralContext,
  chunk: ReadonlyArray<Input>,
  operationOf: (input: Input) => Operation,
  absent: (input: Input) => Result,
  settle: (input: Input, answer: OperationAnswer | undefined) => Result,
): Promise<ReadonlyArray<Result>> => {
  const sent = chunk.filter((input) => isGuid(input.id));
  const answers = sent.length === 0 ? [] : await sendBatch(ctx, sent.map(operationOf));
  let next = 0;
  return chunk.map((input) => (isGuid(input.id) ? settle(input, answers[next++]) : absent(input)));
};

/** Updates entities, 100 operations a `$batch`, each with `If-Match` its `ifVersion` (or `*`). */
export const updateEntities = <Rec extends { readonly id: string }, Encoded, Wire>(
  ctx: BusinessCentralContext,
  spec: EntitySpec<Rec, Encoded, Wire>,
  inputs: ReadonlyArray<EntityUpdate>,
): Promise<ReadonlyArray<WriteResult<Rec>>> =>
  writeInChunks(inputs, batchMax, (chunk) =>
    sendToExisting(
      ctx,
      chunk,
      (input) => ({
        method: "PATCH",
        url: `${entitySetPath(ctx, spec)}(${input.id})`,
        ifMatch: input.ifVersion ?? "*",
        body: input.body,
      }),
      // An entity that cannot exist is not found, as `get` sees it.
      (input): WriteResult<Rec> =>
        writeFailed(new NotFound({ message: `${spec.entitySet} ${input.id} does not exist`, externalId: input.id })),
      (input, answer): WriteResult<Rec> =>
        answer?.status === 200
          ? writtenEntity(spec, input.id, answer.body)
          : writeFailed(operationFailure(answer, input.id)),
    ),
  );

/**
 * Deletes entities, 100 operations a `$batch`, each with `If-Match` its `ifVersion` (or `*`). An
 * entity already gone (404) succeeds.
 */
export const deleteEntities = <Rec, Encoded, Wire>(
  ctx: BusinessCentralContext,
  spec: EntitySpec<Rec, Encoded, Wire>,
  inputs: ReadonlyArray<EntityDelete>,
): Promise<ReadonlyArray<WriteResult<Rec>>> =>
  writeInChunks(inputs, batchMax, (chunk) =>
    sendToExisting(
      ctx,
      chunk,
      (input) => ({
        method: "DELETE",
        url: `${entitySetPath(ctx, spec)}(${input.id})`,
        ifMatch: input.ifVersion ?? "*",
      }),
      // An entity that cannot exist is already gone.
      (input): WriteResult<Rec> => written(input.id),
      (input, answer): WriteResult<Rec> =>
        answer !== undefined && (answer.status === 204 || answer.status === 200 || answer.status === 404)
          ? written(input.id)
          : writeFailed(operationFailure(answer, input.id)),
    ),
  );
