import { JobQueue, RunHistory } from "@tandem/core";
import { TRPCError } from "@trpc/server";
import { Effect, Schema } from "effect";
import { runProcedure, toTRPCError } from "../errors.ts";
import { JobWatchers, JobWatchFailed, TooManyWatchers } from "../JobWatchers.ts";
import { authedProcedure, router } from "../trpc.ts";
import { Id, input, Limit, ShortText } from "./schemas.ts";

const JobStatus = Schema.Literal("queued", "running", "completed", "dead", "cancelled");

export const jobsRouter = router({
  /** The job and, for syncs, one run per attempt. */
  get: authedProcedure.input(input(Schema.Struct({ id: Id }))).query(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.all({
        job: Effect.flatMap(JobQueue, (q) => q.get(input.id, ctx.tenantId)),
        runs: Effect.flatMap(RunHistory, (r) => r.ofJob(input.id)),
      }),
    ),
  ),
  list: authedProcedure
    .input(
      input(
        Schema.Struct({
          status: Schema.optional(JobStatus),
          kind: Schema.optional(ShortText),
          connectionId: Schema.optional(Id),
          limit: Schema.optional(Limit),
        }),
      ),
    )
    .query(({ ctx, input }) =>
      runProcedure(
        ctx,
        Effect.flatMap(JobQueue, (q) => q.list({ ...input, tenantId: ctx.tenantId })),
      ),
    ),
  /** A queued job is cancelled at once; a running one is stopped at its next heartbeat. */
  cancel: authedProcedure.input(input(Schema.Struct({ id: Id }))).mutation(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(JobQueue, (q) => q.cancel(input.id, ctx.tenantId)),
    ),
  ),
  /**
   * Live progress over SSE: an event whenever the job's progress changes, the
   * last one when it is completed, dead or cancelled; then the stream ends. Watchers of a job
   * share one poll; a tenant's watchers are capped (TOO_MANY_REQUESTS beyond): JobWatchers.ts.
   */
  watch: authedProcedure.input(input(Schema.Struct({ id: Id }))).subscription(async function* ({ ctx, input, signal }) {
    const watchers = await ctx.runtime.runPromise(JobWatchers);
    try {
      yield* watchers.watch(ctx.tenantId, input.id, signal ?? new AbortController().signal);
    } catch (error) {
      if (error instanceof TooManyWatchers) throw new TRPCError({ code: "TOO_MANY_REQUESTS", message: error.message });
      if (error instanceof JobWatchFailed) throw toTRPCError(error.cause);
      throw error;
    }
  }),
});

export const deadLettersRouter = router({
  /** Jobs that failed their last attempt, with each attempt's error. */
  list: authedProcedure.input(input(Schema.Struct({ limit: Schema.optional(Limit) }))).query(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(JobQueue, (q) =>
        Effect.flatMap(q.deadLetters({ tenantId: ctx.tenantId, limit: input.limit }), (jobs) =>
          Effect.forEach(jobs, (job) => Effect.map(q.attempts(job.id), (attempts) => ({ ...job, attempts }))),
        ),
      ),
    ),
  ),
  /** Queues the job again with a fresh set of attempts (its history is kept). */
  retry: authedProcedure.input(input(Schema.Struct({ id: Id }))).mutation(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(JobQueue, (q) => q.replay(input.id, ctx.tenantId)),
    ),
  ),
  discard: authedProcedure.input(input(Schema.Struct({ id: Id }))).mutation(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(JobQueue, (q) => q.discard(input.id, ctx.tenantId)),
    ),
  ),
});
