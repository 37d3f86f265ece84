import { initTRPC, TRPCError } from "@trpc/server";
import type { Context } from "./context.ts";
import { fieldIssuesOf } from "./errors.ts";

const jobIdOf = (cause: unknown): string | undefined => {
  const c = cause as { readonly _tag?: string; readonly jobId?: unknown } | undefined;
  return c?._tag === "AlreadyRunning" && typeof c.jobId === "string" ? c.jobId : undefined;
};

const t = initTRPC.context<Context>().create({
  errorFormatter: ({ shape, error }) => {
    const issues = fieldIssuesOf(error.cause);
    const jobId = jobIdOf(error.cause);
    return {
      ...shape,
      // Name the offending fields in the message too, for clients that only show it.
      message:
        issues !== undefined && issues.length > 0
          ? issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ")
          : shape.message,
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
