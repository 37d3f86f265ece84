import { isConnectionFailure } from "./databaseErrors.ts";
import { PreparingClient } from "./PreparedStatements.ts";

/**
 * The pool's client: a `PreparingClient` that ends itself once a statement failed because its
 * session is gone, so that the pool discards it instead of handing it to the next statement.
 *
 * Why it is needed: when PostgreSQL ends a backend under a running statement
 * (`pg_terminate_backend`, a failover), `pg` rejects the statement with 57P01 as soon as the error
 * message arrives, but marks the client unusable only when the socket's end arrives, a tick or
 * more later. Kysely releases the client in between, `pg-pool` sees it still queryable and hands
 * it to the next waiting statement, which then fails with "Connection terminated unexpectedly".
 * `end()` marks the client ending at once, and `pg-pool` removes an ending client on release.
 */
export class PoolClient extends PreparingClient {
  // `any`: forwards pg's overloaded signature unchanged.
  override query(config: any, values?: any, callback?: any): any {
    const result = super.query(config, values, callback);
    if (!(result instanceof Promise)) return result;
    return result.catch((error: unknown) => {
      if (isConnectionFailure(error)) this.end().catch(() => undefined);
      throw error;
    });
  }
}
