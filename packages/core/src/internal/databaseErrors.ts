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

/** Class 08 (connection exception), 57P0x (shutdown), and socket-level errors. */
export const isConnectionFailure = (error: unknown): boolean => {
  const code = pgErrorCode(error);
  if (code === undefined) return false;
  return (
    code.startsWith("08") ||
    code.startsWith("57P") ||
    ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "EPIPE", "EAI_AGAIN"].includes(code)
  );
};

export const errorMessage = (error: unknown): string =>
  error instanceof Error ? error.message : String((error as PgLikeError | null)?.message ?? error);
