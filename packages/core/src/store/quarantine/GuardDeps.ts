import type { Effect } from "effect";
import type { Kysely } from "kysely";
import type { DatabaseService } from "../../db/Database.ts";
import type { DB } from "../../db/schema.ts";
import type { RecordScope } from "../RecordStore.ts";
import type { DeletionGuardLimits } from "./guardRules.ts";

/** What the guard's operations work with (DeletionQuarantine hands them out). */
export interface GuardDeps {
  readonly db: DatabaseService;
  /** Statements on the current transaction or the pool; a failure is a defect (as in the record store). */
  readonly query: <A>(statements: (k: Kysely<DB>) => Promise<A>) => Effect.Effect<A>;
  /** The engine Clock's time. */
  readonly now: Effect.Effect<Date>;
  readonly limits: DeletionGuardLimits;
  /** Called once deletions of the tenant were queued or settled: the mass-deletion alert is evaluated now. */
  readonly notify: (tenantId: string) => Effect.Effect<void>;
}

/** The advisory lock the guard's decisions on one connection x entity take, so they happen one at a time. */
export const guardLockKey = (scope: RecordScope) => `deletion-guard:${scope.connectionId}:${scope.entity}`;

/** Who settles queued deletions that a run told to delete anyway applied (`allowMassDeletion`). */
export const OVERRIDE = "sync option allowMassDeletion";
