import { finalJobStatuses, type JobProgress, JobQueue, SyncRuns, Syncs } from "@tandem/core";
import { Effect, Schema } from "effect";
import { runProcedure } from "../errors.ts";
import { authedProcedure, router } from "../trpc.ts";
import { Id, input, Limit, ShortText } from "./schemas.ts";

const JobStatus = Schema.Literal("queued", "running", "completed", "dead", "cancelled");

/** How often `jobs.watch` looks at the job: progress lives in the database, shared by every process. */
const WATCH_INTERVAL_MS = 250;

const sameProgress = (a: JobProgress | undefined, b: JobProgress) =>
  a !== undefined && JSON.stringify({ ...a, recordsPerSecond: 0 }) === JSON.stringify({ ...b, recordsPerSecond: 0 });

export const jobsRouter = router({
  /** The job and, for syncs, one run per attempt. */
  get: authedProcedure.input(input(Schema.Struct({ id: Id }))).query(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.all({
        job: Effect.flatMap(JobQueue, (q) => q.get(input.id, ctx.tenantId)),
        runs: Effect.flatMap(SyncRuns, (r) => r.ofJob(input.id)),
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
   * last one when it is completed, dead or cancelled; then the stream ends.
   */
  watch: authedProcedure.input(input(Schema.Struct({ id: Id }))).subscription(async function* ({ ctx, input, signal }) {
    let last: JobProgress | undefined;
    while (!signal?.aborted) {
      const progress = await runProcedure(
        ctx,
        Effect.flatMap(Syncs, (s) => s.progress(ctx.tenantId, input.id)),
      );
      if (!sameProgress(last, progress)) {
        last = progress;
        yield progress;
      }
      if (finalJobStatuses.has(progress.status)) return;
      await new Promise((resolve) => setTimeout(resolve, WATCH_INTERVAL_MS));
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
