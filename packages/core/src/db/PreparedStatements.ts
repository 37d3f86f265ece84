import { type RawBuilder, sql } from "kysely";
import pg from "pg";

const namePattern = "[a-z][a-z0-9_]*";
const validName = new RegExp(`^${namePattern}$`);
/** What `preparedAs` puts at the start of a statement, with the name captured. */
const marker = new RegExp(`^/\\* prepared as (${namePattern}) \\*/ `);

/**
 * Named server-side prepared statements for the few statements that run hundreds of times a
 * second with the same text (the webhook intake). Kysely sends every statement unnamed, so
 * PostgreSQL parses, analyses and plans it on every execution; a named statement is parsed once
 * per connection and then only bound and executed. On the intake's statement (10 events, 400
 * executions a second) that was 30% less of the server's CPU (pgbench, bench/README.md).
 *
 * A statement opts in by starting with `preparedAs(name)`, a comment, so the same SQL runs
 * unchanged on PGlite (which has no pool to prepare on) and shows its name in the server's logs.
 * Its text must be the same on every call: `pg` refuses a name reused with another text.
 */
export const preparedAs = (name: string): RawBuilder<unknown> => {
  if (!validName.test(name)) {
    throw new Error(`prepared statement name must be snake_case: ${name}`);
  }
  return sql.raw(`/* prepared as ${name} */ `);
};

/**
 * The pool's client: a marked statement with parameters goes out as a named prepared statement
 * (`pg` remembers per connection which names it has parsed); everything else as before.
 */
export class PreparingClient extends pg.Client {
  // `any`: forwards pg's overloaded signature unchanged.
  override query(config: any, values?: any, callback?: any): any {
    if (typeof config === "string" && Array.isArray(values) && callback === undefined) {
      const name = marker.exec(config)?.[1];
      if (name !== undefined) return super.query({ name, text: config, values });
    }
    return super.query(config, values, callback);
  }
}
