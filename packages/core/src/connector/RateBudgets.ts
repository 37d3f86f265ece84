import { RateBudget, type RateBudgetSource } from "@tandem/connector-sdk/runtime";
import { Effect, Layer } from "effect";
import { Database, type DatabaseService } from "../db/Database.ts";
import { blockBudget, leaseTokens } from "./RateBudgetRows.ts";

/**
 * The connections' shared budgets in PostgreSQL: a lease is one statement on the connection's
 * row, on the pool and never inside a caller's transaction (a budget taken is taken, whatever
 * the caller's transaction does).
 */
export const postgresBudgetSource = (db: DatabaseService): RateBudgetSource => ({
  lease: (connectionId, request) => Effect.promise(() => leaseTokens(db.kysely, connectionId, request)),
  block: (connectionId, untilMs, now) => Effect.promise(() => blockBudget(db.kysely, connectionId, untilMs, now)),
});

const layerNoDeps = Layer.effect(
  RateBudget,
  Effect.map(Database, (db) =>
    db.dialect === "postgres" ? RateBudget.shared(postgresBudgetSource(db)) : RateBudget.inProcess(),
  ),
);

/**
 * The engine's rate budgets (the SDK's `RateBudget`): one per connection across every process on
 * PostgreSQL, each process leasing shares of it (`makeLeasedBucket`); in this process's memory on
 * the embedded PGlite, which serves one process only, so it costs no query.
 */
export const RateBudgets = {
  /** Needs Database. */
  layerNoDeps,
  /** Needs Database (a root). */
  layer: layerNoDeps,
};
