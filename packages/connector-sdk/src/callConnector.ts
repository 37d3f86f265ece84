import { Cause, Clock, Effect, Either, Exit, Option, ParseResult, Runtime, Schema, Stream } from "effect";
import {
  type AnyConnector,
  type ConnectorContext,
  type ConnectorError,
  type ConnectorLogger,
  type EntityDefinition,
  InvalidRecord,
  isConnectorError,
  type MaybeEffect,
  type PageSource,
  rateLimitPolicyOf,
  Unavailable,
} from "./Connector.ts";
import { type ConnectorHttpOptions, makeConnectorHttp, parseRetryAfter } from "./ConnectorHttp.ts";
import { EgressPolicy, isEgressRefused } from "./EgressPolicy.ts";
import type { TokenBucket } from "./RateBudget.ts";
import { compileRecordCodec, type RecordCodec, type RecordCodecResult } from "./RecordCodec.ts";
import { makeTokenSource, memoryRefreshState, requestGrant, type TokenSource } from "./TokenSource.ts";

/*
 * Turns both authoring styles (async functions / async generators, and Effect
 * values / Streams) into Effects and Streams, and decodes what connectors return.
 */

export { isConnectorError } from "./Connector.ts";

/**
 * What a throw from connector code means. Our error reasons keep their tag.
 * TypeError/ReferenceError/SyntaxError/RangeError are bugs in the connector: a
 * defect, so they are not retried as if the vendor were down. Anything else
 * (a vendor SDK's network error, a thrown string) is treated as transient:
 * `Unavailable`, which the job queue retries with backoff and finally dead-letters.
 */
export const fromThrown = (e: unknown): Effect.Effect<never, ConnectorError> => {
  if (isConnectorError(e)) return Effect.fail(e);
  // ctx.http refused the URL: the connection's configuration (or the operator's allow-list) must change.
  if (isEgressRefused(e)) return Effect.fail(new Unavailable({ message: e.message }));
  if (e instanceof TypeError || e instanceof ReferenceError || e instanceof SyntaxError || e instanceof RangeError) {
    return Effect.die(e);
  }
  return Effect.fail(new Unavailable({ message: `connector threw: ${e instanceof Error ? e.message : String(e)}` }));
};

/** Calls connector code that returns a Promise or an Effect (or throws synchronously). */
export const callConnector = <A>(f: () => MaybeEffect<A>): Effect.Effect<A, ConnectorError> =>
  Effect.suspend(() => {
    let value: MaybeEffect<A>;
    try {
      value = f();
    } catch (e) {
      return fromThrown(e);
    }
    if (Effect.isEffect(value)) return value as Effect.Effect<A, ConnectorError>;
    return Effect.tryPromise({ try: () => value as Promise<A>, catch: (e) => e }).pipe(
      Effect.catchAll((e) => fromThrown(e)),
    );
  });

/**
 * An async iterable as a Stream. Unlike Stream.fromAsyncIterable, closing the
 * stream does not wait for the iterator's `return()`: an async generator stuck
 * in an `await` that never settles would otherwise hang the run's shutdown
 * (a timed-out or interrupted run must end). `return()` is still requested.
 */
const fromAsyncIterable = <A>(iterable: AsyncIterable<A>): Stream.Stream<A, ConnectorError> =>
  Stream.unwrapScoped(
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => iterable[Symbol.asyncIterator]()),
        (iterator) =>
          Effect.sync(() => {
            void iterator.return?.()?.catch(() => {});
          }),
      ),
      (iterator) =>
        Stream.repeatEffectOption(
          Effect.tryPromise({ try: () => iterator.next(), catch: (e) => e }).pipe(
            Effect.catchAll((e) => fromThrown(e)),
            Effect.mapError(Option.some),
            Effect.flatMap((result) => (result.done ? Effect.fail(Option.none()) : Effect.succeed(result.value))),
          ),
        ),
    ),
  );

/** A connector's page source (async iterable or Effect Stream) as a Stream. */
export const sourceStream = <A>(f: () => PageSource<A>): Stream.Stream<A, ConnectorError> =>
  Stream.suspend(() => {
    let source: PageSource<A>;
    try {
      source = f();
    } catch (e) {
      return Stream.fromEffect(fromThrown(e));
    }
    if (Stream.StreamTypeId in (source as object)) return source as Stream.Stream<A, ConnectorError>;
    if (typeof (source as AsyncIterable<A>)?.[Symbol.asyncIterator] === "function") {
      return fromAsyncIterable(source as AsyncIterable<A>);
    }
    return Stream.die(new TypeError("read/readIds must return an async iterable or an Effect Stream"));
  });

/** Connector log lines, as Effect logs annotated with the connector's name. */
export const connectorLogger = (connector: AnyConnector, runtime: Runtime.Runtime<never>): ConnectorLogger => {
  const runSync = Runtime.runSync(runtime);
  const log =
    (write: (message: string) => Effect.Effect<void>) =>
    (message: string, fields?: Record<string, unknown>): void =>
      runSync(write(message).pipe(Effect.annotateLogs({ connector: connector.name, ...fields })));
  return { debug: log(Effect.logDebug), info: log(Effect.logInfo), warn: log(Effect.logWarning) };
};

/** Runs an effect for connector code: its failure rejects with the error itself (an `AuthExpired`, ...). */
const toPromise =
  (runtime: Runtime.Runtime<never>, signal: AbortSignal) =>
  <A>(effect: Effect.Effect<A, ConnectorError>): Promise<A> =>
    Runtime.runPromiseExit(runtime)(effect, { signal }).then((exit) =>
      Exit.isSuccess(exit) ? exit.value : Promise.reject(Cause.squash(exit.cause)),
    );

/**
 * A connector context over one connection: config, the budgeted HTTP client, logging, abort
 * signal, and for connectors with an `auth` hook the connection's access grant from `tokens`
 * (the engine's, shared by the connection's jobs). Without `tokens`, the context keeps its own,
 * with the refresh state in memory.
 */
export const makeConnectorContext = (
  connector: AnyConnector,
  config: unknown,
  bucket: TokenBucket,
  signal: AbortSignal,
  tokens?: TokenSource,
): Effect.Effect<ConnectorContext<any>> =>
  Effect.map(Effect.all([Effect.runtime<never>(), EgressPolicy]), ([runtime, egress]) => {
    const runSync = Runtime.runSync(runtime);
    const readHeaders = rateLimitPolicyOf(connector, config)?.fromHeaders;
    return assembleContext(connector, config, {
      signal,
      log: connectorLogger(connector, runtime),
      run: toPromise(runtime, signal),
      tokens,
      http: {
        signal,
        egress,
        // A cancelled run stops waiting for the budget (the wait rejects, like the request would).
        acquire: () => Runtime.runPromise(runtime)(bucket.acquire, { signal }),
        observe: (headers, status) =>
          runSync(
            Effect.flatMap(Clock.currentTimeMillis, (now) =>
              bucket.observe(
                readHeaders?.(headers),
                status === 429 ? (parseRetryAfter(headers.get("retry-after"), now) ?? 1_000) : undefined,
              ),
            ),
          ),
      },
    });
  });

/**
 * A connector context outside the engine (a script, a connector's own tests): no rate budget,
 * and for connectors with an `auth` hook a grant of its own, its refresh state in memory.
 */
export const makeStandaloneContext = <Config>(
  connector: { readonly name: string; readonly auth?: AnyConnector["auth"] },
  config: Config,
  options: {
    readonly http?: Omit<ConnectorHttpOptions, "credentials">;
    readonly log?: ConnectorLogger;
    readonly signal?: AbortSignal;
  } = {},
): ConnectorContext<Config> => {
  const signal = options.signal ?? new AbortController().signal;
  return assembleContext(connector as AnyConnector, config, {
    signal,
    log: options.log ?? connectorLogger(connector as AnyConnector, Runtime.defaultRuntime),
    run: toPromise(Runtime.defaultRuntime, signal),
    tokens: undefined,
    http: { signal, ...options.http },
  });
};

/** The context over its parts; a token source of its own when the connector has `auth` and none is given. */
const assembleContext = <Config>(
  connector: AnyConnector,
  config: Config,
  parts: {
    readonly signal: AbortSignal;
    readonly log: ConnectorLogger;
    readonly run: <A>(effect: Effect.Effect<A, ConnectorError>) => Promise<A>;
    readonly tokens: TokenSource | undefined;
    readonly http: ConnectorHttpOptions;
  },
): ConnectorContext<Config> => {
  const { signal, log, run } = parts;
  const source =
    connector.auth === undefined
      ? undefined
      : (parts.tokens ??
        Effect.runSync(
          makeTokenSource(
            requestGrant(connector, config, {
              http: makeConnectorHttp(parts.http),
              log,
              refreshState: memoryRefreshState(),
            }),
          ),
        ));
  return {
    config,
    signal,
    log,
    http: makeConnectorHttp({
      ...parts.http,
      ...(source === undefined
        ? {}
        : { credentials: { current: () => run(source.current), renew: (refused) => run(source.renew(refused)) } }),
    }),
    auth: {
      grant: () => (source === undefined ? Promise.reject(noAuthHook(connector)) : run(source.current)),
      refresh: () => (source === undefined ? Promise.reject(noAuthHook(connector)) : run(source.refresh)),
    },
  };
};

const noAuthHook = (connector: AnyConnector) =>
  new TypeError(`ctx.auth: connector "${connector.name}" declares no auth hook`);

/** A record decoded with its entity's schema, with what the engine needs of it. */
export interface DecodedRecord {
  readonly externalId: string;
  readonly updatedAt: Date | null;
  readonly record: unknown;
  /** The encoded (JSON) form, as stored. */
  readonly data: Record<string, unknown>;
}

const guessId = (raw: unknown): string | undefined => {
  const id = (raw as { id?: unknown } | null)?.id;
  return typeof id === "string" || typeof id === "number" ? String(id) : undefined;
};

const formatIssues = (error: ParseResult.ParseError) =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((i) => (i.path.length > 0 ? `${i.path.join(".")}: ${i.message}` : i.message))
    .join("; ");

const codecCache = new WeakMap<
  EntityDefinition<any, any>,
  {
    readonly decode: ReturnType<typeof Schema.decodeUnknownEither<any, any>>;
    readonly encode: ReturnType<typeof Schema.encodeEither<any, any>>;
    readonly is: (u: unknown) => boolean;
    /** The compiled success path, when the schema compiles; Effect Schema stays the reference. */
    readonly fast: RecordCodec | undefined;
  }
>();

/** The entity's decoder and encoder, built once per entity (not once per record). */
const codecs = (entity: EntityDefinition<any, any>) => {
  let codec = codecCache.get(entity);
  if (codec === undefined) {
    codec = {
      decode: Schema.decodeUnknownEither(entity.record),
      encode: Schema.encodeEither(entity.record),
      is: Schema.is(entity.record),
      fast: compileRecordCodec(entity.record),
    };
    codecCache.set(entity, codec);
  }
  return codec;
};

/**
 * Decodes one raw record. Failure is an `InvalidRecord` item error: schema
 * mismatch, a missing primary key, or an unusable `updatedAt`. A connector may
 * hand back the record already in its decoded form (what `get` and `write`
 * naturally return after mapping the vendor's shape); it is taken as is.
 */
export const decodeRecord = (
  entity: EntityDefinition<any, any>,
  raw: unknown,
): Either.Either<DecodedRecord, InvalidRecord> => {
  const codec = codecs(entity);
  // Most records are valid and encoded: the compiled codec decodes and encodes them in one
  // walk. Anything it does not accept (invalid, or in Type form) takes Effect Schema's path.
  const fast = codec.fast?.(raw);
  if (fast !== undefined) return accept(entity, fast.type, fast);
  // A compiled codec mirrors Effect Schema on every node it compiles: what it does not accept,
  // Effect's decode refuses too, so a record in its decoded form (what `get` and writes answer)
  // is recognised first, without building the refusal (a ParseError, stack trace and all, for
  // every record of a batch write's answer).
  if (codec.fast !== undefined && codec.is(raw)) return accept(entity, raw);
  const decoded = codec.decode(raw, { errors: "all" });
  if (Either.isLeft(decoded) && codec.is(raw)) return accept(entity, raw);
  if (Either.isLeft(decoded)) {
    const externalId = guessId(raw);
    return Either.left(
      new InvalidRecord({
        message: `record does not match the schema: ${formatIssues(decoded.left)}`,
        ...(externalId !== undefined ? { externalId } : {}),
      }),
    );
  }
  return accept(entity, decoded.right);
};

/**
 * A record of the entity's Type: its id, modification time and encoded (stored) form.
 * `compiled` carries the encoded form when the compiled codec already produced it.
 */
const accept = (
  entity: EntityDefinition<any, any>,
  record: unknown,
  compiled?: RecordCodecResult,
): Either.Either<DecodedRecord, InvalidRecord> => {
  let externalId: unknown;
  let updatedAt: unknown;
  try {
    externalId = entity.primaryKey(record);
    updatedAt = entity.updatedAt(record);
  } catch (e) {
    return Either.left(new InvalidRecord({ message: `primaryKey/updatedAt threw: ${String(e)}` }));
  }
  if ((typeof externalId !== "string" && typeof externalId !== "number") || String(externalId) === "") {
    return Either.left(new InvalidRecord({ message: "record has no primary key" }));
  }
  const id = String(externalId);
  const when = updatedAt === undefined || updatedAt === null ? null : new Date(updatedAt as Date);
  if (when !== null && Number.isNaN(when.getTime())) {
    return Either.left(new InvalidRecord({ message: "updatedAt is not a valid date", externalId: id }));
  }
  const encoded = compiled === undefined ? codecs(entity).encode(record) : Either.right(compiled.encoded);
  if (Either.isLeft(encoded) || typeof encoded.right !== "object" || encoded.right === null) {
    return Either.left(new InvalidRecord({ message: "record cannot be encoded as a JSON object", externalId: id }));
  }
  return Either.right({ externalId: id, updatedAt: when, record, data: encoded.right as Record<string, unknown> });
};
