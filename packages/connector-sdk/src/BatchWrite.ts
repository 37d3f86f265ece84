import {
  type ConnectorError,
  type EncodedRecord,
  isConnectorError,
  Unavailable,
  type WriteFailed,
  type WriteResult,
  type WriteSucceeded,
} from "./Connector.ts";

/*
 * Helpers for a connector's batch writes (`write.batch`, see EntityBatchWrite): they keep the
 * contract's promise that a call never fails once part of it is written, whatever a later request
 * answers.
 */

/**
 * A success: the vendor's id and, where known, the whole record after the write (in the entity's
 * Type or its encoded form, see `WriteSucceeded.record`).
 */
export const written = <Rec>(externalId: string, record?: Rec | EncodedRecord): WriteSucceeded<Rec> =>
  record === undefined ? { ok: true, externalId } : { ok: true, externalId, record };

/** A refusal, or an input that was not written. */
export const writeFailed = (error: ConnectorError): WriteFailed => ({ ok: false, error });

/** Failures make no difference after this one: the vendor is down, limited, or refusing our credentials. */
const transientTags = new Set(["RateLimited", "Unavailable", "AuthExpired"]);

/**
 * What a throw from a chunk's request means for its inputs. A connector error keeps its reason;
 * bugs (TypeError, ReferenceError, SyntaxError, RangeError) are rethrown, as the engine treats
 * them as defects; anything else is transient (`Unavailable`), as `callConnector` maps it.
 */
const asWriteError = (thrown: unknown): ConnectorError => {
  if (isConnectorError(thrown)) return thrown;
  if (
    thrown instanceof TypeError ||
    thrown instanceof ReferenceError ||
    thrown instanceof SyntaxError ||
    thrown instanceof RangeError
  ) {
    throw thrown;
  }
  return new Unavailable({
    message: `connector threw: ${thrown instanceof Error ? thrown.message : String(thrown)}`,
  });
};

const failAll = <Rec>(count: number, error: ConnectorError): Array<WriteResult<Rec>> =>
  Array.from({ length: count }, () => writeFailed(error));

/**
 * Results for `inputs`, written `size` at a time by `writeChunk`, one chunk after another. A chunk
 * whose request throws fails its inputs with that error (as results); after a transient error
 * (`RateLimited`, `Unavailable`, `AuthExpired`) the chunks left are not sent and fail with it too,
 * since they would only meet the same answer and the engine retries them as a whole. So a call
 * never throws a connector error once a chunk is written, and nothing written is reported failed.
 * `writeChunk` must answer one result per input of its chunk, in order.
 *
 * @example
 * update: (ctx, inputs) => writeInChunks(inputs, 100, (chunk) => updateChunk(ctx, chunk))
 */
export const writeInChunks = async <Input, Rec>(
  inputs: ReadonlyArray<Input>,
  size: number,
  writeChunk: (chunk: ReadonlyArray<Input>) => Promise<ReadonlyArray<WriteResult<Rec>>>,
): Promise<ReadonlyArray<WriteResult<Rec>>> => {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`writeInChunks: size must be a positive integer`);
  const results: Array<WriteResult<Rec>> = [];
  let halted: ConnectorError | undefined;
  for (let start = 0; start < inputs.length; start += size) {
    const chunk = inputs.slice(start, start + size);
    if (halted !== undefined) {
      results.push(...failAll<Rec>(chunk.length, halted));
      continue;
    }
    try {
      const answered = await writeChunk(chunk);
      if (answered.length !== chunk.length) {
        throw new RangeError(`writeInChunks: ${answered.length} results for a chunk of ${chunk.length} inputs`);
      }
      results.push(...answered);
      // A chunk whose every input failed transiently met a failed request (answered as results,
      // by `splitOnRefusal` for instance): the chunks left would meet the same answer.
      const [first] = answered;
      if (first !== undefined && !first.ok && answered.every((r) => !r.ok && transientTags.has(r.error._tag))) {
        halted = first.error;
      }
    } catch (thrown) {
      const error = asWriteError(thrown);
      results.push(...failAll<Rec>(chunk.length, error));
      if (transientTags.has(error._tag)) halted = error;
    }
  }
  return results;
};

/** A request's answer as `splitOnRefusal` needs it: per-input results, or a refusal of the whole request. */
export type RequestAnswer<Rec> =
  | { readonly results: ReadonlyArray<WriteResult<Rec>> }
  /** The vendor refused every input for one input's sake (HubSpot's batch create answering one 409). */
  | { readonly refused: ConnectorError };

export interface SplitOptions<Input> {
  /**
   * The inputs the refusal names, by index, when it names any: they fail with the refusal and the
   * rest is sent again at once, which costs one request where halving costs several. Return none
   * when the refusal names no input; a throw counts as none.
   */
  readonly culprits?: (refusal: ConnectorError, inputs: ReadonlyArray<Input>) => Promise<ReadonlyArray<number>>;
}

/**
 * Sends `inputs` with `send`; where the vendor refuses the whole request for one bad input, finds
 * the bad inputs and sends the others again, so each bad input fails alone with the vendor's
 * message and the good ones are written. The inputs a refusal names (`culprits`) are set aside at
 * once; otherwise the inputs are halved and each half sent again, down to single inputs, whose
 * refusal is their own. With b bad inputs of n that is at most about 2·b·log2(n) more requests.
 * A request that throws fails its inputs (as results), and after a transient error nothing more
 * is sent, as in `writeInChunks`.
 *
 * @example
 * splitOnRefusal(chunk, async (inputs) => {
 *   const response = await post("/batch/create", inputs);
 *   return response.status === 409 ? { refused: failureOf(response) } : { results: resultsOf(response) };
 * })
 */
export const splitOnRefusal = async <Input, Rec>(
  inputs: ReadonlyArray<Input>,
  send: (inputs: ReadonlyArray<Input>) => Promise<RequestAnswer<Rec>>,
  options: SplitOptions<Input> = {},
): Promise<ReadonlyArray<WriteResult<Rec>>> => {
  let halted: ConnectorError | undefined;
  const attempt = async (part: ReadonlyArray<Input>): Promise<ReadonlyArray<WriteResult<Rec>>> => {
    if (part.length === 0) return [];
    if (halted !== undefined) return failAll(part.length, halted);
    let answer: RequestAnswer<Rec>;
    try {
      answer = await send(part);
    } catch (thrown) {
      const error = asWriteError(thrown);
      if (transientTags.has(error._tag)) halted = error;
      return failAll(part.length, error);
    }
    if ("results" in answer) {
      if (answer.results.length !== part.length) {
        throw new RangeError(`splitOnRefusal: ${answer.results.length} results for ${part.length} inputs`);
      }
      return answer.results;
    }
    if (part.length === 1) return [writeFailed(answer.refused)];
    const named = new Set(
      options.culprits === undefined
        ? []
        : await options.culprits(answer.refused, part).then(
            (indexes) => indexes.filter((i) => Number.isInteger(i) && i >= 0 && i < part.length),
            () => [],
          ),
    );
    if (named.size > 0) {
      const rest = part.flatMap((_, i) => (named.has(i) ? [] : [i]));
      const restResults = await attempt(rest.map((i) => part[i]!));
      const results: Array<WriteResult<Rec>> = part.map(() => writeFailed(answer.refused));
      rest.forEach((index, k) => {
        results[index] = restResults[k]!;
      });
      return results;
    }
    const middle = Math.ceil(part.length / 2);
    const first = await attempt(part.slice(0, middle));
    const second = await attempt(part.slice(middle));
    return [...first, ...second];
  };
  return attempt(inputs);
};
