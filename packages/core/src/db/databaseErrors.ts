/**
 * PostgreSQL SQLSTATE codes that a caller can act on. Everything else
 * (connection loss, syntax errors, admin shutdown) is an infrastructure failure.
 * See https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
export const constraintKinds = {
  "23505": "unique",
  "23503": "foreign_key",
  "23514": "check",
  "23502": "not_null",
} as const;

export type ConstraintKind = (typeof constraintKinds)[keyof typeof constraintKinds];

interface PgLikeError {
  readonly code?: unknown;
  readonly constraint?: unknown;
  readonly message?: unknown;
}

export const pgErrorCode = (error: unknown): string | undefined => {
  const code = (error as PgLikeError | null)?.code;
  return typeof code === "string" ? code : undefined;
};

export const constraintOf = (error: unknown): { kind: ConstraintKind; constraint: string } | undefined => {
  const code = pgErrorCode(error);
  if (code === undefined || !(code in constraintKinds)) return undefined;
  const constraint = (error as PgLikeError).constraint;
  return {
    kind: constraintKinds[code as keyof typeof constraintKinds],
    constraint: typeof constraint === "string" ? constraint : "",
  };
};

/**
 * The statement refused a value it was given, which no retry changes and no outage explains:
 * class 22 (data exception: a number or date out of range, a NUL in text, invalid JSON), class
 * 23 (integrity constraints, where not one of `constraintKinds` the caller handles) and class 54
 * (program limit exceeded: an index row too large for a 1 MB key, a statement too complex).
 * Class 53 (insufficient resources: disk full, out of memory, too many connections) is the
 * database's state, not the value's, and stays an outage.
 */
export const isRejectedValue = (error: unknown): boolean => {
  const code = pgErrorCode(error);
  return code !== undefined && /^(22|23|54)[0-9A-Z]{3}$/.test(code);
};

/**
 * What `pg` and `pg-pool` raise, without a code, when a connection is gone or cannot be had: the
 * socket closed under a query (a backend ended by `pg_terminate_backend`, a failover), a query
 * sent on a client whose socket already failed, the pool's connect timeout.
 */
const codelessConnectionFailure =
  /^(Connection terminated|Client has encountered a connection error|Client was closed and is not queryable|timeout exceeded when trying to connect)/;

/**
 * Class 08 (connection exception), 57P0x (admin shutdown, crash shutdown, cannot connect now:
 * `pg_terminate_backend` ends a backend with 57P01), socket-level errors, and `pg`'s own
 * messages for a lost connection. Such a failure ends the session: nothing on that connection
 * can succeed any more, while the same statement on a new connection may.
 */
export const isConnectionFailure = (error: unknown): boolean => {
  const code = pgErrorCode(error);
  if (code === undefined) return codelessConnectionFailure.test(errorMessage(error));
  return (
    code.startsWith("08") ||
    code.startsWith("57P") ||
    ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "EPIPE", "EAI_AGAIN"].includes(code)
  );
};

export const errorMessage = (error: unknown): string =>
  error instanceof Error ? error.message : String((error as PgLikeError | null)?.message ?? error);
