/**
 * Tandem's durable job queue (`JobQueue`, the server's own) as a QueueSubject: the same
 * backlog, workers and single enqueues as graphile-worker and pg-boss get.
 */
import { Database, JobQueue } from "@tandem/core";
import { Effect, Exit, Layer, ManagedRuntime, Scope } from "effect";
import type { NoopJobPayload, QueueSubject } from "../queues/QueueSubject.ts";

const kind = "bench_noop";
/** Rows per enqueueMany statement: one multi-row INSERT, as graphile-worker's addJobs chunks. */
const backlogChunk = 5_000;

/**
 * `prefetch`: jobs the worker claims ahead of a free slot (WorkerOptions.prefetch), the
 * counterpart of pg-boss's batch size and graphile-worker's local queue.
 */
export const tandemJobQueueSubject = (databaseUrl: string, options: { readonly prefetch: number }): QueueSubject => {
  const layer = JobQueue.layer.pipe(Layer.provideMerge(Database.layer({ kind: "postgres", url: databaseUrl })));
  let runtime: ManagedRuntime.ManagedRuntime<JobQueue | Database, unknown> | undefined;
  let workerScope: Scope.CloseableScope | undefined;
  const run = <A>(effect: Effect.Effect<A, unknown, JobQueue>) => runtime!.runPromise(effect);
  return {
    name: "tandem",
    setup: async () => {
      // Building the layer connects and applies Tandem's migrations (the `jobs` table).
      runtime = ManagedRuntime.make(layer);
      await runtime.runtime();
    },
    enqueueBacklog: async (count) => {
      const payload: NoopJobPayload = { enqueuedAtMs: 0 };
      for (let done = 0; done < count; done += backlogChunk) {
        const n = Math.min(backlogChunk, count - done);
        await run(Effect.flatMap(JobQueue, (q) => q.enqueueMany(Array.from({ length: n }, () => ({ kind, payload })))));
      }
    },
    startWorkers: async (workers, onJob) => {
      const scope = await Effect.runPromise(Scope.make());
      workerScope = scope;
      await run(
        Effect.flatMap(JobQueue, (q) =>
          q.worker({
            handlers: { [kind]: (job) => Effect.sync(() => onJob(job.payload as NoopJobPayload)) },
            concurrency: workers,
            prefetch: options.prefetch,
            // No connection on these jobs; keep the per-connection bound out of the way regardless.
            perConnectionConcurrency: workers,
          }),
        ).pipe(Scope.extend(scope)),
      );
    },
    enqueueOne: async (payload) => {
      await run(Effect.flatMap(JobQueue, (q) => q.enqueue({ kind, payload })));
    },
    stop: async () => {
      if (workerScope !== undefined) await Effect.runPromise(Scope.close(workerScope, Exit.void));
      await runtime?.dispose();
    },
  };
};
