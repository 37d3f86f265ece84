import {
  Conflict,
  type ConnectorError,
  type EncodedRecord,
  InvalidRecord,
  Unavailable,
  type WriteResult,
  writeFailed,
  writeInChunks,
  written,
} from "@tandem/connector-sdk";
import {
  dataPath,
  decodeEnvelope,
  failureOf,
  ifUnmodifiedSince,
  type SalesforceContext,
  type SObjectSpec,
  salesforceRequest,
} from "./client.ts";
import {
  CollectionResultsWire,
  CollectionRowsWire,
  CompositeResponseWire,
  checkSObjectRow,
  parseSalesforceDateTime,
  salesforceIdPattern,
} from "./wire.ts";

/*
 * Batch writes. Creates, unconditional updates and deletes go over sObject Collections
 * (`/composite/sobjects`, 200 records a request, `allOrNone: false`: each record succeeds or fails
 * alone). Collections take no conditional headers, so updates with `ifVersion` go over Composite
 * (`/composite`, 25 subrequests a request), each a PATCH of sObject Rows with its own
 * `If-Unmodified-Since`: a record changed since answers 412, a version Conflict, and is not
 * written. Salesforce honours no conditional header on DELETE: a delete with `ifVersion` is
 * checked against a retrieve just before (one round trip of race). Salesforce answers writes
 * with ids only, so the written records are retrieved after (`GET /composite/sobjects/{Object}`).
 */

/** Records a collection request takes. */
export const collectionMax = 200;
/** Subrequests a composite request takes. */
export const compositeMax = 25;

/** Fields to write, in Salesforce's names. */
export type SObjectFields = Readonly<Record<string, string | null>>;

export interface SObjectUpdate {
  readonly id: string;
  readonly fields: SObjectFields;
  readonly ifVersion?: string | undefined;
}

export interface SObjectDelete {
  readonly id: string;
  readonly ifVersion?: string | undefined;
}

type CollectionError = CollectionResultsWire[number]["errors"][number];

/** Item errors that mean "try again": the row was locked by another transaction. */
const transientCodes = new Set(["UNABLE_TO_LOCK_ROW"]);
/** Item errors that mean the record is gone. */
const goneCodes = new Set(["ENTITY_IS_DELETED", "NOT_FOUND"]);

/** A collection item's errors as a connector error, mapped as the single-record resources' are. */
const itemFailure = (errors: ReadonlyArray<CollectionError>, externalId: string | undefined): ConnectorError => {
  const [first] = errors;
  if (first !== undefined && transientCodes.has(first.statusCode)) {
    return new Unavailable({ message: `Salesforce ${first.statusCode} (a record lock): try again` });
  }
  const status = first !== undefined && goneCodes.has(first.statusCode) ? 404 : 400;
  const body = errors.map((e) => ({
    errorCode: e.statusCode,
    message: e.message,
    ...(e.fields !== undefined ? { fields: e.fields } : {}),
    ...(e.duplicateResult !== undefined ? { duplicateResult: e.duplicateResult } : {}),
  }));
  return failureOf({ status, headers: new Headers(), body }, externalId);
};

const collectionPath = (ctx: SalesforceContext) => dataPath(ctx, "/composite/sobjects");

/** One collection request's per-record results, checked to answer every record. */
const collectionResults = (
  response: { readonly status: number; readonly headers: Headers; readonly body: unknown },
  count: number,
  what: string,
) => {
  if (response.status !== 200) throw failureOf(response);
  const results = decodeEnvelope(CollectionResultsWire, response, what);
  if (results.length !== count) {
    throw new Unavailable({ message: `${what}: ${results.length} results for ${count} records` });
  }
  return results;
};

/**
 * `GET /composite/sobjects/{Object}?ids=&fields=`: the rows of the ids still live, by id. Never
 * throws: it runs after writes, which must stay successes; a failed retrieve leaves their records
 * unknown (the engine then reads them with `get`, or the next pull brings them).
 */
const retrieve = async <Rec, Encoded>(
  ctx: SalesforceContext,
  spec: SObjectSpec<Rec, Encoded>,
  ids: ReadonlyArray<string>,
): Promise<Map<string, unknown>> => {
  const rows = new Map<string, unknown>();
  if (ids.length === 0) return rows;
  try {
    const response = await salesforceRequest(ctx, {
      path: `${collectionPath(ctx)}/${spec.sobject}`,
      query: { ids: ids.join(","), fields: ["Id", ...spec.fields, "IsDeleted", "SystemModstamp"].join(",") },
    });
    if (response.status !== 200) throw failureOf(response);
    for (const row of decodeEnvelope(CollectionRowsWire, response, `retrieve ${spec.sobject}`)) {
      const id = (row as { Id?: unknown } | null)?.Id;
      if (typeof id === "string") rows.set(id, row);
    }
  } catch (error) {
    ctx.log.warn(`salesforce: could not retrieve ${spec.sobject} records after a write`, {
      error: error instanceof Error ? error.message : String(error),
    });
  }
  return rows;
};

/**
 * The written record from a retrieve, in its encoded form as reads yield it (the engine decodes it
 * in one pass), or a success without it when the row is missing or malformed.
 */
const writtenRow = <Rec, Encoded>(spec: SObjectSpec<Rec, Encoded>, id: string, rows: Map<string, unknown>) => {
  const row = rows.get(id);
  const checked = row === undefined ? undefined : checkSObjectRow(row);
  return checked !== undefined && "ok" in checked
    ? written<Rec>(id, spec.toRecord(checked.ok) as EncodedRecord)
    : written<Rec>(id);
};

/** Fills the successes of `results` (ids) with their retrieved records. */
const withRecords = async <Rec, Encoded>(
  ctx: SalesforceContext,
  spec: SObjectSpec<Rec, Encoded>,
  results: ReadonlyArray<WriteResult<Rec>>,
): Promise<ReadonlyArray<WriteResult<Rec>>> => {
  const rows = await retrieve(
    ctx,
    spec,
    results.flatMap((r) => (r.ok ? [r.externalId] : [])),
  );
  return results.map((r) => (r.ok ? writtenRow(spec, r.externalId, rows) : r));
};

/** Creates records, 200 a request; each result carries the record as Salesforce then has it. */
export const createSObjects = <Rec, Encoded>(
  ctx: SalesforceContext,
  spec: SObjectSpec<Rec, Encoded>,
  inputs: ReadonlyArray<SObjectFields>,
): Promise<ReadonlyArray<WriteResult<Rec>>> =>
  writeInChunks(inputs, collectionMax, async (chunk) => {
    const response = await salesforceRequest(ctx, {
      method: "POST",
      path: collectionPath(ctx),
      body: { allOrNone: false, records: chunk.map((fields) => ({ attributes: { type: spec.sobject }, ...fields })) },
    });
    const results = collectionResults(response, chunk.length, `create ${spec.sobject}`).map(
      (result): WriteResult<Rec> =>
        result.success && typeof result.id === "string"
          ? written(result.id)
          : writeFailed(itemFailure(result.errors, undefined)),
    );
    return withRecords(ctx, spec, results);
  });

/** Unconditional updates over a collection PATCH, 200 a request. */
const updateOverCollection = <Rec, Encoded>(
  ctx: SalesforceContext,
  spec: SObjectSpec<Rec, Encoded>,
  inputs: ReadonlyArray<SObjectUpdate>,
) =>
  writeInChunks(inputs, collectionMax, async (chunk) => {
    const response = await salesforceRequest(ctx, {
      method: "PATCH",
      path: collectionPath(ctx),
      body: {
        allOrNone: false,
        records: chunk.map(({ id, fields }) => ({ attributes: { type: spec.sobject }, id, ...fields })),
      },
    });
    const results = collectionResults(response, chunk.length, `update ${spec.sobject}`).map(
      (result, i): WriteResult<Rec> =>
        result.success ? written(chunk[i]!.id) : writeFailed(itemFailure(result.errors, chunk[i]!.id)),
    );
    return withRecords(ctx, spec, results);
  });

/** Conditional updates over Composite, 25 a request: a PATCH of each record with If-Unmodified-Since. */
const updateOverComposite = <Rec, Encoded>(
  ctx: SalesforceContext,
  spec: SObjectSpec<Rec, Encoded>,
  inputs: ReadonlyArray<SObjectUpdate>,
) =>
  writeInChunks(inputs, compositeMax, async (chunk) => {
    const prepared = chunk.map((input) => {
      try {
        return { since: ifUnmodifiedSince(input.ifVersion!, input.id) };
      } catch (error) {
        if (error instanceof InvalidRecord) return { refused: error };
        throw error;
      }
    });
    const sent = chunk.flatMap((input, i) => {
      const since = prepared[i]!.since;
      return since === undefined ? [] : [{ input, since, referenceId: `r${i}` }];
    });
    const answers = new Map<string, { readonly status: number; readonly body: unknown }>();
    if (sent.length > 0) {
      const response = await salesforceRequest(ctx, {
        method: "POST",
        path: dataPath(ctx, "/composite"),
        body: {
          allOrNone: false,
          compositeRequest: sent.map(({ input, since, referenceId }) => ({
            method: "PATCH",
            url: dataPath(ctx, `/sobjects/${spec.sobject}/${encodeURIComponent(input.id)}`),
            referenceId,
            body: input.fields,
            httpHeaders: { "If-Unmodified-Since": since },
          })),
        },
      });
      if (response.status !== 200) throw failureOf(response);
      for (const sub of decodeEnvelope(CompositeResponseWire, response, `composite update ${spec.sobject}`)
        .compositeResponse) {
        answers.set(sub.referenceId, { status: sub.httpStatusCode, body: sub.body });
      }
    }
    const results = chunk.map((input, i): WriteResult<Rec> => {
      const refused = prepared[i]!.refused;
      if (refused !== undefined) return writeFailed(refused);
      const answer = answers.get(`r${i}`);
      if (answer === undefined) {
        return writeFailed(new Unavailable({ message: `Salesforce answered no result for ${input.id}` }));
      }
      if (answer.status === 204 || answer.status === 200) return written(input.id);
      return writeFailed(failureOf({ status: answer.status, headers: new Headers(), body: answer.body }, input.id));
    });
    return withRecords(ctx, spec, results);
  });

/**
 * Updates records: those with `ifVersion` conditionally over Composite (25 a request), the others
 * over a collection (200 a request). Results in the inputs' order.
 */
export const updateSObjects = async <Rec, Encoded>(
  ctx: SalesforceContext,
  spec: SObjectSpec<Rec, Encoded>,
  inputs: ReadonlyArray<SObjectUpdate>,
): Promise<ReadonlyArray<WriteResult<Rec>>> => {
  const conditional = inputs.flatMap((input, i) => (input.ifVersion === undefined ? [] : [i]));
  const plain = inputs.flatMap((input, i) => (input.ifVersion === undefined ? [i] : []));
  const results: Array<WriteResult<Rec>> = new Array(inputs.length);
  const [overCollection, overComposite] = [
    await updateOverCollection(
      ctx,
      spec,
      plain.map((i) => inputs[i]!),
    ),
    await updateOverComposite(
      ctx,
      spec,
      conditional.map((i) => inputs[i]!),
    ),
  ];
  plain.forEach((index, k) => {
    results[index] = overCollection[k]!;
  });
  conditional.forEach((index, k) => {
    results[index] = overComposite[k]!;
  });
  return results;
};

/**
 * Deletes records to the recycle bin, 200 a request (`DELETE /composite/sobjects?ids=`). A record
 * already deleted succeeds. Inputs with `ifVersion` are retrieved first: one changed since fails
 * as a version Conflict, one already gone succeeds.
 */
export const deleteSObjects = <Rec, Encoded>(
  ctx: SalesforceContext,
  spec: SObjectSpec<Rec, Encoded>,
  inputs: ReadonlyArray<SObjectDelete>,
): Promise<ReadonlyArray<WriteResult<Rec>>> =>
  writeInChunks(inputs, collectionMax, async (chunk) => {
    const checked = chunk.filter((input) => input.ifVersion !== undefined).map((input) => input.id);
    const current = checked.length === 0 ? new Map<string, unknown>() : await retrieveOrThrow(ctx, spec, checked);
    const early = chunk.map((input): WriteResult<Rec> | undefined => {
      if (!salesforceIdPattern.test(input.id)) {
        return writeFailed(new InvalidRecord({ message: `not a Salesforce id: ${input.id}`, externalId: input.id }));
      }
      if (input.ifVersion === undefined) return undefined;
      const row = current.get(input.id);
      if (row === undefined) return written(input.id);
      const lastModified = parseSalesforceDateTime((row as { LastModifiedDate?: unknown }).LastModifiedDate);
      const version = Date.parse(input.ifVersion);
      return lastModified !== undefined && Math.floor(lastModified / 1000) > Math.floor(version / 1000)
        ? writeFailed(
            new Conflict({
              message: `Salesforce ${spec.sobject} ${input.id} changed since version ${input.ifVersion}`,
              externalId: input.id,
              reason: "version",
            }),
          )
        : undefined;
    });
    const send = chunk.filter((_, i) => early[i] === undefined).map((input) => input.id);
    const outcome = new Map<string, WriteResult<Rec>>();
    if (send.length > 0) {
      const response = await salesforceRequest(ctx, {
        method: "DELETE",
        path: collectionPath(ctx),
        query: { ids: send.join(","), allOrNone: false },
      });
      collectionResults(response, send.length, `delete ${spec.sobject}`).forEach((result, k) => {
        const id = send[k]!;
        const alreadyGone = result.errors.some((e) => e.statusCode === "ENTITY_IS_DELETED");
        outcome.set(id, result.success || alreadyGone ? written(id) : writeFailed(itemFailure(result.errors, id)));
      });
    }
    return chunk.map((input, i) => early[i] ?? outcome.get(input.id)!);
  });

/** A retrieve whose failure fails the request (it runs before any write: nothing to lose). */
const retrieveOrThrow = async <Rec, Encoded>(
  ctx: SalesforceContext,
  spec: SObjectSpec<Rec, Encoded>,
  ids: ReadonlyArray<string>,
): Promise<Map<string, unknown>> => {
  const response = await salesforceRequest(ctx, {
    path: `${collectionPath(ctx)}/${spec.sobject}`,
    query: { ids: ids.join(","), fields: "Id,LastModifiedDate" },
  });
  if (response.status !== 200) throw failureOf(response);
  const rows = new Map<string, unknown>();
  for (const row of decodeEnvelope(CollectionRowsWire, response, `retrieve ${spec.sobject}`)) {
    const id = (row as { Id?: unknown } | null)?.Id;
    if (typeof id === "string") rows.set(id, row);
  }
  return rows;
};
