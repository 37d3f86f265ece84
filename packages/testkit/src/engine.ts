import { randomBytes } from "node:crypto";
import {
  type AnyConnector,
  Conflicts,
  Connections,
  type Database,
  Engine,
  type EngineConfig,
  type EngineServices,
  EntitySync,
  JobQueue,
  RecordStore,
  SyncJobHandlers,
  type SyncMode,
  type SyncTarget,
  Tenants,
} from "@tandem/core";
import { Chunk, Effect, Either, Layer, Option, Redacted, type Scope, Stream } from "effect";
import { type Dialect, testDatabaseLayer } from "./databases.ts";

export interface TestEngineOptions<E, R = never, E2 = never> {
  /** Which database the suite gets: a fresh PGlite, or a fresh PostgreSQL database of its own. */
  readonly dialect: Dialect;
  readonly connectors: ReadonlyArray<AnyConnector>;
  /** Replaces the suite's database layer, e.g. to wrap it and count statements. */
  readonly database?: Layer.Layer<Database, E>;
  /** The credential cipher's key; a random one by default. */
  readonly secretKey?: Redacted.Redacted<Buffer>;
  /** The rest of the engine's configuration (retry, egress, schedules, admin key). */
  readonly config?: Omit<EngineConfig<E>, "database" | "secretKey" | "connectors">;
  /**
   * Services built over the engine that take the place of its own in the test's context, e.g. an
   * OutboundWebhooks with a short timeout. The engine's services keep using the engine's.
   */
  readonly overrides?: Layer.Layer<R, E2, EngineServices>;
}

/**
 * Every core service (Engine.layer) on a fresh database of `dialect`, knowing `connectors`, with a
 * random secret key. The queue's worker, the scheduler's fiber and the record event dispatcher
 * (`RecordEvents.run`) are not started: a test starts what it exercises.
 */
export const testEngineLayer = <E = never, R = never, E2 = never>(options: TestEngineOptions<E, R, E2>) => {
  const engine = Engine.layer<E>({
    ...options.config,
    database: options.database ?? (testDatabaseLayer(options.dialect) as Layer.Layer<Database, E>),
    secretKey: options.secretKey ?? Redacted.make(randomBytes(32)),
    connectors: options.connectors,
  });
  const overrides = options.overrides ?? (Layer.empty as unknown as Layer.Layer<R, E2, EngineServices>);
  return overrides.pipe(Layer.provideMerge(engine));
};

/** A new tenant with one connection of `connector`: the ids a SyncTarget needs. */
export const createTestConnection = (connector: string, config: unknown) =>
  Effect.gen(function* () {
    const tenant = yield* (yield* Tenants).create({ name: `tenant-${randomBytes(3).toString("hex")}` });
    const connection = yield* (yield* Connections).create(tenant.id, {
      connector,
      name: `${connector}-${randomBytes(3).toString("hex")}`,
      config,
    });
    return { tenantId: tenant.id, connectionId: connection.id };
  });

/** The target's live stored records, by external id. */
export const storedRecords = (target: SyncTarget) =>
  Effect.flatMap(RecordStore, (store) => Stream.runCollect(store.stream(target))).pipe(
    Effect.map((records) => new Map(Chunk.toReadonlyArray(records).map((r) => [r.externalId, r]))),
  );

/** One stored record (soft-deleted ones included); a defect when there is none. */
export const storedRecord = (target: SyncTarget, id: string) =>
  Effect.flatMap(RecordStore, (store) => store.get(target, id)).pipe(Effect.map(Option.getOrThrow));

/** The conflict audit of one record of the target's connection (the first page: a test's few rows). */
export const conflictsOf = (target: SyncTarget, externalId: string) =>
  Effect.flatMap(Conflicts, (c) => c.list(target.tenantId, { connectionId: target.connectionId })).pipe(
    Effect.map((page) => page.items.filter((c) => c.externalId === externalId)),
  );

/**
 * The queue's worker with the sync job handlers, for the test's scope, as a server runs it
 * (testEngineLayer does not start it); it polls often, the tests being short.
 */
export const startQueueWorker: Effect.Effect<void, never, JobQueue | SyncJobHandlers | Scope.Scope> = Effect.gen(
  function* () {
    const handlers = (yield* SyncJobHandlers).handlers;
    yield* (yield* JobQueue).worker({ handlers, pollMs: 100 });
  },
);

/**
 * Runs a sync mode until it completes, as the job queue does after transient failures: each
 * retry resumes from the run's last checkpoint. Counts the failures by reason in `failures`;
 * anything the queue would not retry (not RateLimited or Unavailable) fails the test.
 */
export const runSyncUntilDone = (target: SyncTarget, mode: SyncMode, failures: Record<string, number>) =>
  Effect.gen(function* () {
    const engine = yield* EntitySync;
    for (let attempt = 1; attempt <= 60; attempt++) {
      const outcome = yield* Effect.either(engine.run({ ...target, mode, options: { batchSize: 100 } }));
      if (Either.isRight(outcome)) return outcome.right;
      const error = outcome.left;
      if (error._tag !== "RateLimited" && error._tag !== "Unavailable") return yield* Effect.die(error);
      failures[error._tag] = (failures[error._tag] ?? 0) + 1;
    }
    return yield* Effect.die(new Error(`${mode} did not complete in 60 attempts`));
  });
