import { ConstraintViolation, DatabaseRejectedValue, type FieldIssue } from "@tandem/core";
import { TRPCError } from "@trpc/server";
import { Cause, Chunk, Effect, Exit, Option } from "effect";
import type { AppRuntime, AppServices } from "./runtime.ts";

type TRPCCode = TRPCError["code"];

/** Engine error tags -> transport codes. The one place this mapping lives. */
const codeByTag: Record<string, TRPCCode> = {
  ResourceNotFound: "NOT_FOUND",
  InvalidInput: "BAD_REQUEST",
  AlreadyExists: "CONFLICT",
  AlreadyRunning: "CONFLICT",
  RateLimited: "TOO_MANY_REQUESTS",
  PreconditionFailed: "PRECONDITION_FAILED",
};

/** A failure as the API shows it: a code, a message, and field issues when there are some. */
export const toTRPCError = (cause: Cause.Cause<unknown>): TRPCError => {
  if (referenceDeletedMeanwhile(cause)) {
    // A row the request writes refers to one deleted since the request looked it up (a
    // connection deleted by another request while a record of it was being changed): the
    // answer a moment later would have been "not found", and nothing of the request was kept.
    return new TRPCError({
      code: "NOT_FOUND",
      message: "something this request refers to (its connection or tenant) was deleted while it ran",
    });
  }
  const failure = Cause.failureOption(cause);
  if (Option.isSome(failure)) {
    const error = failure.value as { readonly _tag?: string; readonly message?: string };
    const code = (error._tag !== undefined && codeByTag[error._tag]) || "INTERNAL_SERVER_ERROR";
    return new TRPCError({ code, message: error.message ?? String(error), cause: failure.value });
  }
  if (refusedValueOf(cause) !== undefined) {
    // Bad input that got past the schemas: the caller's to fix, and no outage. PostgreSQL's
    // message may quote the value (`invalid input syntax for type uuid: "..."`): not answered.
    return new TRPCError({
      code: "BAD_REQUEST",
      message: "a value in the request is out of range or cannot be stored",
    });
  }
  // Defects and interruptions are not the caller's business: a generic message, details in the log.
  return new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: "internal error" });
};

/** Whether the request broke a foreign key: what it refers to was deleted while it ran. */
const referenceDeletedMeanwhile = (cause: Cause.Cause<unknown>): boolean =>
  [...Cause.failures(cause), ...Cause.defects(cause)].some(
    (e) => e instanceof ConstraintViolation && e.kind === "foreign_key",
  );

/** The value the database refused, when that is what the effect died of. */
const refusedValueOf = (cause: Cause.Cause<unknown>): DatabaseRejectedValue | undefined =>
  Cause.defects(cause).pipe(
    Chunk.findFirst((d): d is DatabaseRejectedValue => d instanceof DatabaseRejectedValue),
    Option.getOrUndefined,
  );

const MAX_ISSUES = 20;

/** Field issues carried by an error's cause, from our InvalidInput or from a Standard Schema failure. */
export const fieldIssuesOf = (cause: unknown): ReadonlyArray<FieldIssue> | undefined => {
  const c = cause as {
    readonly _tag?: string;
    readonly issues?:
      | ReadonlyArray<{ readonly path?: ReadonlyArray<unknown>; readonly message: string }>
      | ReadonlyArray<FieldIssue>;
  } | null;
  if (c === null || c === undefined || !Array.isArray(c.issues)) return undefined;
  // At most MAX_ISSUES: a 1,000-change push with a bad field in each needs the first few.
  if (c._tag === "InvalidInput") return (c.issues as ReadonlyArray<FieldIssue>).slice(0, MAX_ISSUES);
  // One issue per path, as for engine errors: an optional field's union reports each branch.
  const byPath = new Map<string, FieldIssue>();
  for (const i of c.issues as ReadonlyArray<{ readonly path?: ReadonlyArray<unknown>; readonly message: string }>) {
    const path = (i.path ?? [])
      .map((p) => (typeof p === "object" && p !== null && "key" in p ? String((p as { key: unknown }).key) : String(p)))
      .join(".");
    if (!byPath.has(path)) byPath.set(path, { path, message: i.message });
    if (byPath.size === MAX_ISSUES) break;
  }
  return [...byPath.values()];
};

/**
 * Runs an engine effect for a procedure, in a span named after the procedure,
 * turning its failure into the mapped TRPCError.
 */
export const runProcedure = async <A, E>(
  ctx: { readonly runtime: AppRuntime; readonly path: string },
  effect: Effect.Effect<A, E, AppServices>,
): Promise<A> => {
  const runtime = ctx.runtime;
  const exit = await runtime.runPromiseExit(
    effect.pipe(
      Effect.tapBoth({
        onSuccess: () => Effect.logDebug("procedure succeeded"),
        onFailure: (e) => Effect.logDebug("procedure failed", (e as { _tag?: string })._tag ?? "error"),
      }),
      Effect.annotateLogs({ procedure: ctx.path }),
      Effect.withSpan(`trpc.${ctx.path}`),
    ),
  );
  if (Exit.isSuccess(exit)) return exit.value;
  const error = toTRPCError(exit.cause);
  // A value the database refused is the caller's to fix; any other internal error (a defect, an
  // interruption, or a failure no code maps to) is ours, and its cause goes to the log.
  const refused = Option.isNone(Cause.failureOption(exit.cause)) ? refusedValueOf(exit.cause) : undefined;
  if (refused !== undefined || error.code === "INTERNAL_SERVER_ERROR") {
    await runtime.runPromise(
      (refused !== undefined
        ? Effect.logWarning(`procedure input refused by the database (SQLSTATE ${refused.code}): ${refused.message}`)
        : Effect.logError("procedure failed", exit.cause)
      ).pipe(Effect.annotateLogs({ procedure: ctx.path })),
    );
  }
  throw error;
};
