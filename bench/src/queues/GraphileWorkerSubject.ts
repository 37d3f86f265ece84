import { Logger, makeWorkerUtils, type Runner, run, runMigrations, type WorkerUtils } from "graphile-worker";
import type { NoopJobPayload, QueueSubject } from "./QueueSubject.ts";

const silent = new Logger(() => () => {});
const task = "bench_noop";

/**
 * graphile-worker with its defaults (LISTEN/NOTIFY wake-ups, no local batching), `concurrency`
 * set to the worker count.
 */
export const graphileWorkerSubject = (databaseUrl: string): QueueSubject => {
  let utils: WorkerUtils | undefined;
  let runner: Runner | undefined;
  return {
    name: "graphile-worker",
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
