/**
 * Import, delta and reconcile through `EntitySync.run` on the bench's HubSpot connection, in
 * the calling (measured) process.
 */
import { Database, type DatabaseConfig, EntitySync, type SyncMode, type SyncRunResult } from "@tandem/core";
import { Effect, ManagedRuntime } from "effect";
import { benchHubSpotConfig, ensureConnection, type ReconcileListing, tandemEngineLayer } from "./TandemEngine.ts";
import type { TandemSyncInput } from "./TandemHooks.ts";

const entity = "contacts";

const makeRuntime = (database: DatabaseConfig, listing: ReconcileListing | undefined) =>
  ManagedRuntime.make(tandemEngineLayer(database, listing));
type EngineRuntime = ReturnType<typeof makeRuntime>;

/**
 * The engine's services per database, kept for the life of the process: a process asked for
 * several runs (the delta scenario's, see scenarios/delta.ts) runs them as a server does, on
 * one pool and one HTTP client. `closeEngines` releases them before the process exits (PGlite
 * must be closed to keep what it wrote).
 */
const engines = new Map<string, EngineRuntime>();

const engineFor = (database: DatabaseConfig, listing: ReconcileListing | undefined): EngineRuntime => {
  const key = JSON.stringify([database, listing]);
  let runtime = engines.get(key);
  if (runtime === undefined) {
    runtime = makeRuntime(database, listing);
    engines.set(key, runtime);
  }
  return runtime;
};

export const closeEngines = async (): Promise<void> => {
  const all = [...engines.values()];
  engines.clear();
  await Promise.all(all.map((runtime) => runtime.dispose()));
};

/**
 * One run of `mode`; `after` reads what it needs from the database after the run.
 * `seconds` covers `EntitySync.run` alone: the engine's services (pool, migration check) and the
 * connection are set up before, and the connection is tested once (`connections.test`: the
 * connector's check, one request to the source), as in a server that is already running when a
 * sync starts. Without it a fresh process's first request (HTTP client start-up, a new TCP
 * connection: about 60 ms) fell inside the clock, most of a sub-second delta.
 */
export const runSync = <A>(
  input: TandemSyncInput,
  mode: SyncMode,
  after: (result: SyncRunResult, target: { readonly connectionId: string }) => Effect.Effect<A, unknown, Database>,
): Promise<A & { readonly seconds: number }> =>
  Effect.gen(function* () {
    const target = yield* ensureConnection(input.connectionName, benchHubSpotConfig(input));
    const engine = yield* EntitySync;
    const checked = yield* engine.check(target);
    if (!checked.ok)
      return yield* Effect.fail(new Error(`the source refused the connection: ${checked.error?.message}`));
    const started = performance.now();
    const result = yield* engine.run({ ...target, entity, mode });
    const seconds = (performance.now() - started) / 1000;
    if (result.errors.length > 0) {
      return yield* Effect.fail(
        new Error(`tandem ${mode} run had ${result.errors.length} item errors: ${JSON.stringify(result.errors[0])}`),
      );
    }
    if (result.quarantine !== undefined || result.quarantined !== undefined) {
      return yield* Effect.fail(
        new Error(
          `tandem ${mode} run was quarantined: ${JSON.stringify(result.quarantine ?? { held: result.quarantined })}`,
        ),
      );
    }
    return { ...(yield* after(result, target)), seconds };
  }).pipe(engineFor(input.database, input.reconcileListing).runPromise);

/** Records the run created or updated. */
export const recordsWritten = (result: SyncRunResult) => Effect.succeed({ records: result.created + result.updated });

/**
 * What a reconciliation did, as the harness checks it: the connection's soft-deleted contacts
 * (against the archived ids) and how many records it found drifted and re-fetched.
 */
export const reconcileOutcome = (result: SyncRunResult, connectionId: string) =>
  Effect.map(softDeletedExternalIds(connectionId), (deleted) => ({ ...deleted, drifted: result.drifted ?? 0 }));

/** The connection's soft-deleted contacts, as the harness checks them against the archived ids. */
export const softDeletedExternalIds = (connectionId: string) =>
  Effect.gen(function* () {
    const db = yield* Database;
    const rows = yield* db.query((k) =>
      k
        .selectFrom("records")
        .select("external_id")
        .where("connection_id", "=", connectionId)
        .where("entity", "=", entity)
        .where("deleted_at", "is not", null)
        .execute(),
    );
    return { softDeletedExternalIds: rows.map((r) => r.external_id) };
  });
