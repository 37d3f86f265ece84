import { mkdirSync } from "node:fs";
import { PGlite } from "@electric-sql/pglite";
import { Context, Data, Duration, Effect, Exit, FiberRef, Layer } from "effect";
import { globalValue } from "effect/GlobalValue";
import { type ControlledTransaction, Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import {
  type ConstraintKind,
  constraintOf,
  errorMessage,
  isConnectionFailure,
  isRejectedValue,
  pgErrorCode,
} from "./databaseErrors.ts";
import { migrateToLatest, pendingMigrations } from "./Migrations.ts";
import { PGliteDialect } from "./PGliteDialect.ts";
import { PoolClient } from "./PoolClient.ts";
import type { DB } from "./schema.ts";

/** Where the data lives: a PostgreSQL server, or embedded PGlite (in a directory, or in memory). */
export type DatabaseConfig =
  | { readonly kind: "postgres"; readonly url: string; readonly poolSize?: number }
  | { readonly kind: "pglite"; readonly dataDir: string | undefined };

/** A statement broke a constraint: the caller decides what that means (duplicate name, missing parent...). */
export class ConstraintViolation extends Data.TaggedError("ConstraintViolation")<{
  readonly kind: ConstraintKind;
  readonly constraint: string;
  readonly message: string;
}> {}

/**
 * The database could not be reached or failed in a way no caller can act on.
 * Raised as a defect: it surfaces as an internal error, and job runners retry it.
 */
export class DatabaseUnavailable extends Data.TaggedError("DatabaseUnavailable")<{
  readonly message: string;
  /**
   * The connection failed (server gone, backend terminated, no connection to be had): the same
   * statement may succeed on a new connection. False for a statement the server rejected.
   */
  readonly connectionFailure: boolean;
  readonly cause?: unknown;
}> {}

/**
 * A statement refused a value it was given (a number or date out of range, text PostgreSQL
 * cannot store, a key too large for its index): bad input that got past validation, not an
 * outage. A defect like DatabaseUnavailable (no caller can act on it), which the API answers
 * 400 and the log names as a refused value, so monitoring does not read it as the database down.
 */
export class DatabaseRejectedValue extends Data.TaggedError("DatabaseRejectedValue")<{
  /** The SQLSTATE, e.g. 22003 (numeric value out of range). */
  readonly code: string;
  readonly message: string;
}> {}

/** The database layer could not start: unreachable server, bad URL, failed migration. */
export class DatabaseStartupError extends Data.TaggedError("DatabaseStartupError")<{
  readonly message: string;
}> {}

/**
 * The transaction the current fiber runs in, if any (`query` uses it transparently), with what
 * is to run once it commits (`afterCommit`).
 */
interface OpenTransaction {
  readonly trx: ControlledTransaction<DB>;
  readonly afterCommit: Array<Effect.Effect<void>>;
}

const currentTransaction = globalValue("@tandem/core/Database/currentTransaction", () =>
  FiberRef.unsafeMake<OpenTransaction | undefined>(undefined),
);

const classify = (error: unknown): ConstraintViolation | DatabaseRejectedValue | DatabaseUnavailable => {
  const constraint = constraintOf(error);
  if (constraint !== undefined) return new ConstraintViolation({ ...constraint, message: errorMessage(error) });
  if (isRejectedValue(error))
    return new DatabaseRejectedValue({ code: pgErrorCode(error)!, message: errorMessage(error) });
  const connectionFailure = isConnectionFailure(error);
  return new DatabaseUnavailable({
    message: connectionFailure ? `database connection failed: ${errorMessage(error)}` : errorMessage(error),
    connectionFailure,
    cause: error,
  });
};

/** Runs one Kysely call; constraint errors are typed failures, everything else a defect (a refused value or an outage). */
const run = <A>(f: () => Promise<A>): Effect.Effect<A, ConstraintViolation> =>
  Effect.tryPromise({ try: f, catch: classify }).pipe(
    Effect.catchTags({ DatabaseUnavailable: Effect.die, DatabaseRejectedValue: Effect.die }),
  );

export interface DatabaseService {
  readonly dialect: DatabaseConfig["kind"];
  /** The root Kysely instance. Prefer `query`, which joins the current transaction. */
  readonly kysely: Kysely<DB>;
  /** Runs a query on the current transaction if the fiber is in one, else on the pool. */
  readonly query: <A>(f: (db: Kysely<DB>) => Promise<A>) => Effect.Effect<A, ConstraintViolation>;
  /**
   * Runs `effect` in one transaction: committed if it succeeds, rolled back if it
   * fails or is interrupted. Nested calls join the outer transaction.
   */
  readonly transaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>;
  /**
   * Runs `effect` once what was written so far is visible to others: after the current
   * transaction commits (not at all if it rolls back), or at once outside a transaction. For
   * announcements such as job wake-ups, which must not reach another process before the rows
   * do. Its failures are logged, never the caller's.
   */
  readonly afterCommit: (effect: Effect.Effect<void>) => Effect.Effect<void>;
  /** Reachable and fully migrated (for readiness probes). */
  readonly ready: Effect.Effect<{ readonly ok: boolean; readonly detail: string }>;
  /**
   * The PostgreSQL URL, for the few uses that need a dedicated connection outside
   * the pool (LISTEN for job wake-ups). Undefined on PGlite.
   */
  readonly connectionUrl?: string | undefined;
}

const describeUrl = (url: string): string => {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return "(unparseable url)";
  }
};

const makeKysely = (config: DatabaseConfig) =>
  Effect.gen(function* () {
    if (config.kind === "postgres") {
      const url = yield* Effect.try({
        try: () => new URL(config.url),
        catch: () => new DatabaseStartupError({ message: "DATABASE_URL is not a valid URL" }),
      });
      if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
        return yield* new DatabaseStartupError({
          message: `DATABASE_URL must start with postgres:// (got ${url.protocol}//)`,
        });
      }
      const pool = new pg.Pool({
        // Ends a client whose session is gone, so the pool never hands it out again.
        Client: PoolClient,
        connectionString: config.url,
        max: config.poolSize ?? 10,
        // A new connection's first statements are slow (a backend to start, its catalog caches
        // to fill: 70 to 100 ms for the webhook intake under load), so a connection stays open
        // for a minute of idleness rather than pg's 10 s: a server whose load needs three
        // connections at moments keeps three, instead of reopening one every few seconds.
        idleTimeoutMillis: 60_000,
        connectionTimeoutMillis: 5_000,
      });
      // An idle client losing its server (restart, failover) emits 'error' on the pool;
      // unhandled, that would crash the process. The pool drops the client and reconnects.
      pool.on("error", () => {});
      // A client checked out of the pool has no pool listener; when its server goes
      // away mid-query it emits 'error' too, which would crash the process. The query
      // itself still rejects, and the pool discards the client (no longer queryable).
      pool.on("connect", (client) => client.on("error", () => {}));
      return { kysely: new Kysely<DB>({ dialect: new PostgresDialect({ pool }) }), close: () => Promise.resolve() };
    }
    if (config.dataDir !== undefined) mkdirSync(config.dataDir, { recursive: true });
    const pglite = yield* Effect.tryPromise({
      try: () => PGlite.create(config.dataDir),
      catch: (e) =>
        new DatabaseStartupError({ message: `cannot open embedded database in ${config.dataDir}: ${errorMessage(e)}` }),
    });
    return { kysely: new Kysely<DB>({ dialect: new PGliteDialect(pglite) }), close: () => pglite.close() };
  });

const where = (config: DatabaseConfig) =>
  config.kind === "postgres" ? describeUrl(config.url) : (config.dataDir ?? "memory");

/** Kysely as an Effect service, on PostgreSQL (`pg`) or embedded PGlite. */
export class Database extends Context.Tag("@tandem/core/Database")<Database, DatabaseService>() {
  /**
   * Connects, checks the server answers, and applies pending migrations.
   * Fails with DatabaseStartupError (one clear line) rather than hanging.
   */
  static layer(config: DatabaseConfig, options: { readonly migrate?: boolean } = {}) {
    return Layer.scoped(
      Database,
      Effect.gen(function* () {
        const { kysely } = yield* Effect.acquireRelease(makeKysely(config), ({ kysely, close }) =>
          Effect.promise(async () => {
            await kysely.destroy();
            await close();
          }),
        );
        yield* Effect.tryPromise({
          try: () => kysely.selectNoFrom((eb) => eb.val(1).as("one")).execute(),
          catch: (e) =>
            new DatabaseStartupError({ message: `cannot reach database at ${where(config)}: ${errorMessage(e)}` }),
        }).pipe(
          Effect.timeoutFail({
            duration: Duration.seconds(10),
            onTimeout: () =>
              new DatabaseStartupError({ message: `cannot reach database at ${where(config)}: timed out after 10s` }),
          }),
        );
        if (options.migrate !== false) {
          yield* Effect.tryPromise({
            try: () => migrateToLatest(kysely as Kysely<unknown>),
            catch: (e) => new DatabaseStartupError({ message: `database migration failed: ${errorMessage(e)}` }),
          });
        }
        return Database.make(config.kind, kysely, config.kind === "postgres" ? config.url : undefined);
      }),
    );
  }

  /** Builds the service over an existing Kysely instance (the caller owns its lifetime). */
  static make(dialect: DatabaseConfig["kind"], kysely: Kysely<DB>, connectionUrl?: string): DatabaseService {
    const query = <A>(f: (db: Kysely<DB>) => Promise<A>) =>
      Effect.flatMap(FiberRef.get(currentTransaction), (open) => run(() => f(open?.trx ?? kysely)));

    const runHook = (effect: Effect.Effect<void>) =>
      effect.pipe(Effect.catchAllCause((cause) => Effect.logWarning("after-commit action failed", cause)));

    const transaction = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      Effect.flatMap(FiberRef.get(currentTransaction), (outer) =>
        outer !== undefined
          ? effect
          : Effect.acquireUseRelease(
              run(() => kysely.startTransaction().execute()).pipe(
                Effect.orDie,
                Effect.map((trx): OpenTransaction => ({ trx, afterCommit: [] })),
              ),
              (open) => Effect.locally(effect, currentTransaction, open),
              (open, exit) =>
                Exit.isSuccess(exit)
                  ? run(() => open.trx.commit().execute()).pipe(
                      Effect.orDie,
                      Effect.zipRight(Effect.forEach(open.afterCommit, runHook, { discard: true })),
                    )
                  : run(() => open.trx.rollback().execute()).pipe(Effect.orDie),
            ),
      );

    const afterCommit = (effect: Effect.Effect<void>) =>
      Effect.flatMap(FiberRef.get(currentTransaction), (open) =>
        open === undefined ? runHook(effect) : Effect.sync(() => void open.afterCommit.push(effect)),
      );

    const ready = Effect.tryPromise(() => pendingMigrations(kysely as Kysely<unknown>)).pipe(
      Effect.map((pending) =>
        pending.length === 0
          ? { ok: true, detail: "database reachable, migrations applied" }
          : { ok: false, detail: `pending migrations: ${pending.join(", ")}` },
      ),
      Effect.catchAll((e) => Effect.succeed({ ok: false, detail: `database unreachable: ${errorMessage(e.error)}` })),
    );

    return { dialect, kysely, query, transaction, afterCommit, ready, connectionUrl };
  }
}
