import { randomBytes } from "node:crypto";
import {
  type AnyConnector,
  Conflicts,
  Connections,
  ConnectorCredentials,
  ConnectorRegistry,
  CredentialCipher,
  type Database,
  EntitySync,
  JobQueue,
  OutboundWebhooks,
  RateBudget,
  RecordStore,
  RetryPolicy,
  type SyncMode,
  type SyncTarget,
  Tenants,
} from "@tandem/core";
import { Chunk, Effect, Either, Layer, Option, Redacted, Stream } from "effect";
import { type Dialect, testDatabaseLayer } from "./databases.ts";

/**
 * The engine's services (EntitySync, RecordStore, Conflicts with the outbox and queue it writes
 * to, Connections, Tenants, RateBudget, Database) on a fresh database of `dialect`, knowing `connectors`.
 * Pass `database` to wrap the database layer (e.g. to count statements).
 */
export const testEngineLayer = <E>(
  dialect: Dialect,
  connectors: ReadonlyArray<AnyConnector>,
  database: Layer.Layer<Database, E> = testDatabaseLayer(dialect) as Layer.Layer<Database, E>,
) => {
  const infra = Layer.mergeAll(
    database,
    CredentialCipher.layer(Redacted.make(randomBytes(32))),
    ConnectorRegistry.layer(connectors),
    RateBudget.layer,
    RetryPolicy.layer,
  );
  const services = Layer.mergeAll(RecordStore.layer, Tenants.layer, Connections.layer, ConnectorCredentials.layer).pipe(
    Layer.provideMerge(infra),
  );
  const conflicts = Conflicts.layerNoDeps.pipe(
    Layer.provideMerge(OutboundWebhooks.layerNoDeps),
    Layer.provideMerge(JobQueue.layerNoDeps),
    Layer.provideMerge(services),
  );
  return EntitySync.layerNoDeps.pipe(Layer.provideMerge(conflicts));
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
