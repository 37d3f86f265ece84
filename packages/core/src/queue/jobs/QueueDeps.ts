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
}
