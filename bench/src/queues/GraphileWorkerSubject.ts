import { Logger, makeWorkerUtils, type Runner, run, runMigrations, type WorkerUtils } from "graphile-worker";
import type { NoopJobPayload, QueueSubject } from "./QueueSubject.ts";

const silent = new Logger(() => () => {});
const task = "bench_noop";

/**
 * graphile-worker, `concurrency` set to the worker count. With `batchSize` undefined: its
 * defaults (LISTEN/NOTIFY wake-ups, one fetch and one completion per job). With a `batchSize`:
 * the batching its performance guide recommends for high throughput (a local queue of that
 * many locked jobs, completions batched within a tick).
 */
export const graphileWorkerSubject = (
  databaseUrl: string,
  options: { readonly batchSize?: number } = {},
): QueueSubject => {
  let utils: WorkerUtils | undefined;
  let runner: Runner | undefined;
  return {
    name: options.batchSize === undefined ? "graphile-worker" : "graphile-worker batched",
    setup: async () => {
      await runMigrations({ connectionString: databaseUrl, logger: silent });
      utils = await makeWorkerUtils({ connectionString: databaseUrl, logger: silent });
    },
    enqueueBacklog: async (count) => {
      const chunk = 5_000;
      for (let done = 0; done < count; done += chunk) {
        const n = Math.min(chunk, count - done);
        const payload: NoopJobPayload = { enqueuedAtMs: 0 };
        await utils!.addJobs(Array.from({ length: n }, () => ({ identifier: task, payload })));
      }
    },
    startWorkers: async (workers, onJob) => {
      runner = await run({
        connectionString: databaseUrl,
        concurrency: workers,
        noHandleSignals: true,
        logger: silent,
        ...(options.batchSize === undefined
          ? {}
          : { preset: { worker: { localQueue: { size: options.batchSize }, completeJobBatchDelay: 0 } } }),
        taskList: {
          [task]: async (payload) => {
            onJob(payload as NoopJobPayload);
          },
        },
      });
    },
    enqueueOne: async (payload) => {
      await utils!.addJob(task, payload);
    },
    stop: async () => {
      await runner?.stop();
      await utils?.release();
    },
  };
};
