import {
  Conflict,
  type ConnectorError,
  type EncodedRecord,
  type EntityWrite,
  InvalidRecord,
  NotFound,
  type RequestAnswer,
  splitOnRefusal,
  type WriteResult,
  writeFailed,
  writeInChunks,
  written,
} from "@tandem/connector-sdk";
import { Either, Schema } from "effect";
import {
  archiveCrmObject,
  batchMaxInputs,
  type CrmObjectSpec,
  createCrmObject,
  decodeEnvelope,
  failureOf,
  type HubSpotContext,
  hubSpotRequest,
  updateCrmObject,
} from "./client.ts";
import type { HubSpotConfig } from "./config.ts";
import { BatchWire, type CrmObjectWire, checkCrmObjectWire, type ErrorWire } from "./wire.ts";

/*
 * An entity's writes. Batch writes go over `/crm/v3/objects/{type}/batch/create|read|update|archive`, 100 inputs a
 * request. HubSpot has no conditional write: an update or archive with `ifVersion` is checked
 * against a `batch/read` of the same ids just before (the read also gives the whole record an
 * update's answer lacks), so a change landing between the two requests is not caught.
 * See https://developers.hubspot.com/docs/api/crm/contacts (batch endpoints)
 */

/** Properties to write, in HubSpot's names. */
export type Properties = Readonly<Record<string, string>>;

export interface PropertiesUpdate {
  readonly id: string;
  readonly properties: Properties;
  readonly ifVersion?: string | undefined;
}

export interface ArchiveInput {
  readonly id: string;
  readonly ifVersion?: string | undefined;
}

const batchPath = (spec: { readonly objectType: string }, operation: string) =>
  `/crm/v3/objects/${spec.objectType}/batch/${operation}`;

/**
 * A wire object checked by hand (`checkCrmObjectWire`: the schema's rules, a test compares both):
 * a batch answers hundreds, and Effect Schema's decode of each was a large share of a push.
 */
const decodeWire = (raw: unknown): Either.Either<CrmObjectWire, string> => {
  const checked = checkCrmObjectWire(raw);
  return checked.error === undefined ? Either.right(checked.ok) : Either.left(checked.error);
};

/**
 * A written wire object's record in its encoded form, as reads yield it: the engine decodes it in
 * one pass (decoding each here first, with Effect Schema, was the largest share of a batch push).
 * A success without the record when the answer is not a CRM object (it was written all the same).
 */
const writtenRecord = <Rec, Encoded>(spec: CrmObjectSpec<Rec, Encoded>, id: string, raw: unknown): WriteResult<Rec> => {
  const wire = decodeWire(raw);
  return wire._tag === "Right" ? written(id, spec.toRecord(wire.right) as EncodedRecord) : written(id);
};

/** The value HubSpot stores for a written property: "" clears it (null), as the fake and HubSpot answer. */
const stored = (value: string | null | undefined) => (value === undefined || value === "" ? null : value);

/**
 * Pairs batch/create's results with their inputs. HubSpot does not promise the results' order, and
 * without `objectWriteTraceId` they carry nothing of the input: a result belongs to the input
 * whose written properties it echoes (identical inputs are interchangeable), its own position
 * first; a result echoing none takes the first input left.
 */
const pairCreated = (inputs: ReadonlyArray<Properties>, results: ReadonlyArray<unknown>): Array<unknown> => {
  const paired: Array<unknown> = new Array(inputs.length).fill(undefined);
  const echoes = (raw: unknown, input: Properties) => {
    const properties = (raw as { properties?: Record<string, string | null> } | null)?.properties ?? {};
    return Object.entries(input).every(([name, value]) => stored(properties[name]) === stored(value));
  };
  results.forEach((raw, position) => {
    const free = (i: number) => paired[i] === undefined;
    const index =
      position < inputs.length && free(position) && echoes(raw, inputs[position]!)
        ? position
        : inputs.findIndex((input, i) => free(i) && echoes(raw, input));
    const target = index >= 0 ? index : paired.indexOf(undefined);
    if (target >= 0) paired[target] = raw;
  });
  return paired;
};

/**
 * The inputs a whole-request 409 names: HubSpot's "Contact already exists. Existing ID: N" names
 * the record holding the email, not the input, so the existing record's `uniqueProperty` is read
 * (one GET) and the inputs carrying the same value are the culprits.
 */
const duplicateCulprits =
  <Rec, Encoded>(ctx: HubSpotContext, spec: CrmObjectSpec<Rec, Encoded>) =>
  async (refusal: ConnectorError, inputs: ReadonlyArray<Properties>): Promise<ReadonlyArray<number>> => {
    const property = spec.uniqueProperty;
    if (property === undefined || refusal._tag !== "Conflict" || refusal.externalId === undefined) return [];
    const response = await hubSpotRequest(ctx, {
      path: `/crm/v3/objects/${spec.objectType}/${encodeURIComponent(refusal.externalId)}`,
      query: { properties: property },
    });
    if (response.status !== 200) return [];
    const wire = decodeWire(response.body);
    const taken = wire._tag === "Right" ? wire.right.properties[property]?.toLowerCase() : undefined;
    if (taken === undefined || taken === "") return [];
    return inputs.flatMap((input, i) => (input[property]?.toLowerCase() === taken ? [i] : []));
  };

/** One batch/create request: the created objects, or the refusal of the whole request (409/400). */
const sendCreate =
  <Rec, Encoded>(ctx: HubSpotContext, spec: CrmObjectSpec<Rec, Encoded>) =>
  async (inputs: ReadonlyArray<Properties>): Promise<RequestAnswer<Rec>> => {
    const response = await hubSpotRequest(ctx, {
      method: "POST",
      path: batchPath(spec, "create"),
      body: { inputs: inputs.map((properties) => ({ properties })) },
    });
    // Without objectWriteTraceId, one refused input refuses them all: nothing was created.
    if (response.status === 409 || response.status === 400) return { refused: failureOf(response) };
    if (response.status !== 201 && response.status !== 200) throw failureOf(response);
    const batch = decodeEnvelope(BatchWire, response, `batch create ${spec.objectType}`);
    const paired = pairCreated(inputs, batch.results);
    return {
      results: paired.map((raw): WriteResult<Rec> => {
        const id = (raw as { id?: unknown } | undefined)?.id;
        if (typeof id !== "string") {
          return writeFailed(
            new InvalidRecord({ message: `HubSpot answered batch create without a result for this input` }),
          );
        }
        return writtenRecord(spec, id, raw);
      }),
    };
  };

/**
 * Creates objects, 100 a request. HubSpot refuses a whole batch/create for one bad input (one 409
 * for an email already taken, one 400 for a bad value): the inputs the 409 names are set aside
 * and the rest sent again; otherwise the request is halved until the bad inputs fail alone.
 */
export const createCrmObjects = <Rec, Encoded>(
  ctx: HubSpotContext,
  spec: CrmObjectSpec<Rec, Encoded>,
  inputs: ReadonlyArray<Properties>,
): Promise<ReadonlyArray<WriteResult<Rec>>> =>
  writeInChunks(inputs, batchMaxInputs, (chunk) =>
    splitOnRefusal(chunk, sendCreate(ctx, spec), { culprits: duplicateCulprits(ctx, spec) }),
  );

/** `batch/read` of ids with every property the entity reads: id -> wire object; absent ids are missing or archived. */
const readObjects = async <Rec, Encoded>(
  ctx: HubSpotContext,
  spec: CrmObjectSpec<Rec, Encoded>,
  ids: ReadonlyArray<string>,
): Promise<Map<string, CrmObjectWire>> => {
  const response = await hubSpotRequest(ctx, {
    method: "POST",
    path: batchPath(spec, "read"),
    body: { properties: spec.properties, inputs: ids.map((id) => ({ id })) },
  });
  // 207: some ids were not found (their ids in errors[].context.ids); the rest are in results.
  if (response.status !== 200 && response.status !== 207) throw failureOf(response);
  const batch = decodeEnvelope(BatchWire, response, `batch read ${spec.objectType}`);
  const found = new Map<string, CrmObjectWire>();
  for (const raw of batch.results) {
    const wire = decodeWire(raw);
    if (wire._tag === "Right") found.set(wire.right.id, wire.right);
  }
  return found;
};

/** The version check: HubSpot's `updatedAt` against the input's `ifVersion` (an ISO time). */
const moved = (wire: CrmObjectWire, ifVersion: string | undefined) =>
  ifVersion !== undefined && Date.parse(wire.updatedAt) !== Date.parse(ifVersion);

const versionConflict = (spec: { readonly objectType: string }, wire: CrmObjectWire, ifVersion: string) =>
  new Conflict({
    message: `HubSpot ${spec.objectType} ${wire.id} changed since version ${ifVersion} (now ${wire.updatedAt})`,
    externalId: wire.id,
    reason: "version",
  });

const gone = (spec: { readonly objectType: string }, id: string) =>
  new NotFound({ message: `HubSpot ${spec.objectType} ${id} does not exist or is archived`, externalId: id });

/** The error of a 207 that concerns `id`: the one naming it in its context, else the only one there is. */
const errorFor = (errors: ReadonlyArray<ErrorWire>, id: string, unanswered: number): ConnectorError => {
  const named = errors.find((e) => Object.values(e.context ?? {}).some((values) => values.includes(id)));
  const error = named ?? (errors.length === 1 && unanswered === 1 ? errors[0] : undefined);
  if (error === undefined) {
    return new InvalidRecord({
      message: `HubSpot did not update this record; its errors: ${errors.map((e) => e.message).join("; ") || "none"}`,
      externalId: id,
    });
  }
  const status = error.category === "OBJECT_NOT_FOUND" ? 404 : error.category === "CONFLICT" ? 409 : 400;
  return failureOf({ status, headers: new Headers(), body: error }, id);
};

/** One batch/update request; `current` is what the read before found, for the whole record. */
const sendUpdate =
  <Rec, Encoded>(ctx: HubSpotContext, spec: CrmObjectSpec<Rec, Encoded>, current: ReadonlyMap<string, CrmObjectWire>) =>
  async (inputs: ReadonlyArray<PropertiesUpdate>): Promise<RequestAnswer<Rec>> => {
    const response = await hubSpotRequest(ctx, {
      method: "POST",
      path: batchPath(spec, "update"),
      body: { inputs: inputs.map(({ id, properties }) => ({ id, properties })) },
    });
    if (response.status === 400 || response.status === 409) return { refused: failureOf(response) };
    if (response.status !== 200 && response.status !== 207) throw failureOf(response);
    const batch = decodeEnvelope(BatchWire, response, `batch update ${spec.objectType}`);
    const answered = new Map<string, unknown>();
    for (const raw of batch.results) {
      const id = (raw as { id?: unknown } | null)?.id;
      if (typeof id === "string") answered.set(id, raw);
    }
    const unanswered = inputs.filter((input) => !answered.has(input.id)).length;
    return {
      results: inputs.map(({ id }): WriteResult<Rec> => {
        const raw = answered.get(id);
        if (raw === undefined) return writeFailed(errorFor(batch.errors, id, unanswered));
        // The answer carries the properties written (and the new modification time); the rest
        // of the record is as the read just before found it.
        const before = current.get(id);
        const after = decodeWire(raw);
        if (before === undefined || after._tag === "Left") return written(id);
        return writtenRecord(spec, id, {
          ...before,
          ...after.right,
          properties: { ...before.properties, ...after.right.properties },
        });
      }),
    };
  };

/** Inputs of one chunk naming the same id twice: HubSpot refuses such a request whole ("Duplicate IDs"). */
const repeated = (ids: ReadonlyArray<string>) => {
  const seen = new Set<string>();
  return ids.map((id) => {
    if (seen.has(id)) return true;
    seen.add(id);
    return false;
  });
};

const twice = (id: string) =>
  new InvalidRecord({ message: `record ${id} appears twice in one batch; send one change per record`, externalId: id });

/**
 * Updates objects, 100 a request: a `batch/read` of the ids (missing ones fail as NotFound, those
 * moved past `ifVersion` as a version Conflict), then `batch/update` of the rest. The read gives
 * each result the whole record: batch/update answers only the properties written.
 */
export const updateCrmObjects = <Rec, Encoded>(
  ctx: HubSpotContext,
  spec: CrmObjectSpec<Rec, Encoded>,
  inputs: ReadonlyArray<PropertiesUpdate>,
): Promise<ReadonlyArray<WriteResult<Rec>>> =>
  writeInChunks(inputs, batchMaxInputs, async (chunk) => {
    const duplicate = repeated(chunk.map((input) => input.id));
    const current = await readObjects(
      ctx,
      spec,
      chunk.filter((_, i) => !duplicate[i]).map((input) => input.id),
    );
    const results: Array<WriteResult<Rec> | undefined> = chunk.map((input, i) => {
      const wire = current.get(input.id);
      if (duplicate[i]) return writeFailed(twice(input.id));
      if (wire === undefined) return writeFailed(gone(spec, input.id));
      if (moved(wire, input.ifVersion)) return writeFailed(versionConflict(spec, wire, input.ifVersion!));
      return undefined;
    });
    const send = chunk.filter((_, i) => results[i] === undefined);
    const sent = await splitOnRefusal(send, sendUpdate(ctx, spec, current));
    let next = 0;
    return results.map((result) => result ?? sent[next++]!);
  });

/**
 * Archives objects, 100 a request (`batch/archive` answers 204 whatever the ids: archiving what is
 * gone succeeds). Inputs with `ifVersion` are read first: a missing one is already gone (success),
 * a moved one a version Conflict.
 */
export const archiveCrmObjects = <Rec, Encoded>(
  ctx: HubSpotContext,
  spec: CrmObjectSpec<Rec, Encoded>,
  inputs: ReadonlyArray<ArchiveInput>,
): Promise<ReadonlyArray<WriteResult<Rec>>> =>
  writeInChunks(inputs, batchMaxInputs, async (chunk) => {
    const checked = chunk.filter((input) => input.ifVersion !== undefined).map((input) => input.id);
    const current = checked.length === 0 ? new Map<string, CrmObjectWire>() : await readObjects(ctx, spec, checked);
    const results: Array<WriteResult<Rec> | undefined> = chunk.map((input) => {
      const wire = current.get(input.id);
      if (wire !== undefined && moved(wire, input.ifVersion)) {
        return writeFailed(versionConflict(spec, wire, input.ifVersion!));
      }
      return undefined;
    });
    const send = [...new Set(chunk.filter((_, i) => results[i] === undefined).map((input) => input.id))];
    if (send.length > 0) {
      const response = await hubSpotRequest(ctx, {
        method: "POST",
        path: batchPath(spec, "archive"),
        body: { inputs: send.map((id) => ({ id })) },
      });
      if (response.status !== 204 && response.status !== 200) throw failureOf(response);
    }
    return chunk.map((input, i) => results[i] ?? written<Rec>(input.id));
  });

/** A batch's only result as a single write's answer: the record decoded, or the failure thrown. */
const single = async <Rec, Encoded>(
  spec: CrmObjectSpec<Rec, Encoded>,
  results: Promise<ReadonlyArray<WriteResult<Rec>>>,
): Promise<Rec | undefined> => {
  const [result] = await results;
  if (result === undefined) throw new InvalidRecord({ message: "HubSpot answered no result" });
  if (!result.ok) throw result.error;
  if (result.record === undefined) return undefined;
  const decoded = Schema.decodeUnknownEither(spec.record)(result.record);
  if (decoded._tag === "Left") {
    throw new InvalidRecord({ message: decoded.left.message, externalId: result.externalId });
  }
  return decoded.right;
};

/**
 * An entity's writes: single create, update and archive (an update or archive with `ifVersion`
 * goes the batch way, read then write, so the version is checked), and the batch writes.
 * `toProperties` maps normalized fields to HubSpot's property names.
 */
export const crmObjectWrite = <Rec, Encoded>(
  spec: CrmObjectSpec<Rec, Encoded>,
  toProperties: (changes: Partial<Rec>) => Record<string, string>,
): EntityWrite<Rec, HubSpotConfig> => ({
  create: (ctx, record) => createCrmObject(ctx, spec, toProperties(record)),
  update: async (ctx, id, changes, options) => {
    if (options?.ifVersion === undefined) return updateCrmObject(ctx, spec, id, toProperties(changes));
    const record = await single(
      spec,
      updateCrmObjects(ctx, spec, [{ id, properties: toProperties(changes), ifVersion: options.ifVersion }]),
    );
    if (record === undefined)
      throw new InvalidRecord({ message: `malformed ${spec.objectType} ${id}`, externalId: id });
    return record;
  },
  delete: async (ctx, id, options) => {
    if (options?.ifVersion === undefined) return archiveCrmObject(ctx, spec, id);
    await single(spec, archiveCrmObjects(ctx, spec, [{ id, ifVersion: options.ifVersion }]));
  },
  conditional: true,
  batch: {
    maxPerRequest: batchMaxInputs,
    create: (ctx, inputs) =>
      createCrmObjects(
        ctx,
        spec,
        inputs.map((input) => toProperties(input.record)),
      ),
    update: (ctx, inputs) =>
      updateCrmObjects(
        ctx,
        spec,
        inputs.map((input) => ({ id: input.id, properties: toProperties(input.changes), ifVersion: input.ifVersion })),
      ),
    delete: (ctx, inputs) => archiveCrmObjects(ctx, spec, inputs),
  },
});
