import type { FieldIssue } from "@tandem/core";
import { initTRPC, TRPCError } from "@trpc/server";
import type { Context } from "./context.ts";
import { fieldIssuesOf } from "./errors.ts";

const jobIdOf = (cause: unknown): string | undefined => {
  const c = cause as { readonly _tag?: string; readonly jobId?: unknown } | undefined;
  return c?._tag === "AlreadyRunning" && typeof c.jobId === "string" ? c.jobId : undefined;
};

/** Characters of an error message: it names fields and what is wrong, never whole values. */
const MAX_MESSAGE_LENGTH = 2_000;

/**
 * What an error answers as its message. An internal error says only that: its own message may
 * be a library's ("timeout exceeded when trying to connect"), and the log has the details.
 */
const messageOf = (
  shape: { readonly message: string; readonly data: { readonly code: string } },
  issues?: ReadonlyArray<FieldIssue>,
) => {
  if (shape.data.code === "INTERNAL_SERVER_ERROR") return "internal error";
  // Name the offending fields in the message too, for clients that only show it.
  const message =
    issues !== undefined && issues.length > 0
      ? issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ")
      : shape.message;
  return message.length > MAX_MESSAGE_LENGTH ? `${message.slice(0, MAX_MESSAGE_LENGTH - 1)}…` : message;
};

const t = initTRPC.context<Context>().create({
  // The shape's `data.stack` (tRPC adds it outside production) is left out: no stack trace or
  // file path reaches a client.
  errorFormatter: ({ shape, error }) => {
    const issues = fieldIssuesOf(error.cause);
    const jobId = jobIdOf(error.cause);
    return {
      ...shape,
      message: messageOf(shape, issues),
      data: {
        code: shape.data.code,
        httpStatus: shape.data.httpStatus,
        path: shape.data.path,
        ...(issues ? { issues } : {}),
        // `already_running` names the live job, so a client can watch it instead.
        ...(jobId !== undefined ? { jobId } : {}),
      },
    };
  },
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;

/** Every procedure knows its path, so its engine work runs in a span named after it. */
const procedure = t.procedure.use(({ ctx, path, next }) => next({ ctx: { ...ctx, path } }));

/** No key needed. */
export const publicProcedure = procedure;

/** A tenant's API key: the procedure sees `ctx.tenantId`, and only that tenant's data. */
export const authedProcedure = procedure.use(({ ctx, next }) => {
  if (ctx.principal === null) throw new TRPCError({ code: "UNAUTHORIZED", message: "missing or invalid API key" });
  if (ctx.principal.role !== "tenant") {
    throw new TRPCError({ code: "FORBIDDEN", message: "this procedure needs a tenant API key, not the admin key" });
  }
  return next({ ctx: { ...ctx, tenantId: ctx.principal.tenantId } });
});

/** The admin key: manages tenants and their keys. */
export const adminProcedure = procedure.use(({ ctx, next }) => {
  if (ctx.principal === null) throw new TRPCError({ code: "UNAUTHORIZED", message: "missing or invalid API key" });
  if (ctx.principal.role !== "admin")
    throw new TRPCError({ code: "FORBIDDEN", message: "this procedure needs the admin key" });
  return next();
});
