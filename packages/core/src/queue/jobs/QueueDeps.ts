import type { Context, Effect } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import type { RetryPolicy } from "../RetryPolicy.ts";

/** What the queue's operations work with: the database, the retry policy, the workers' wake-up. */
export interface QueueDeps {
  readonly db: DatabaseService;
  readonly policy: Context.Tag.Service<RetryPolicy>;
  /**
   * Jobs became claimable: once they are committed, wakes this process's workers and announces
   * them to every other process's.
   */
  readonly wake: Effect.Effect<void>;
  /**
   * A job comes due at a later time: once committed, wakes this process's workers then (others
   * find it by polling), so a job delayed by a second runs a second later, not a poll later.
   */
  readonly wakeAt: (at: Date) => Effect.Effect<void>;
}
