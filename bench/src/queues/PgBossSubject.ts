import { PgBoss } from "pg-boss";
import type { NoopJobPayload, QueueSubject } from "./QueueSubject.ts";

const queue = "bench_noop";

/**
 * pg-boss with `localConcurrency` set to the worker count, LISTEN/NOTIFY (instance and queue), and
 * batches with burst mode. Without batches a pg-boss worker waits out its polling interval
 * (at least 0.5 s) after every fetch, which would measure the interval, not the library; so it
 * gets the configuration its documentation gives for throughput.
 */
export const pgBossSubject = (databaseUrl: string, options: { readonly batchSize: number }): QueueSubject => {
  const boss = new PgBoss({ connectionString: databaseUrl, schedule: false, useListenNotify: true, max: 10 });
  boss.on("error", (error) => console.error("pg-boss:", error));
  return {
    name: "pg-boss",
    setup: async () => {
      await boss.start();
      await boss.createQueue(queue, { notify: true });
    },
    enqueueBacklog: async (count) => {
      const chunk = 5_000;
      for (let done = 0; done < count; done += chunk) {
        const n = Math.min(chunk, count - done);
        const data: NoopJobPayload = { enqueuedAtMs: 0 };
        await boss.insert(
          queue,
          Array.from({ length: n }, () => ({ data })),
        );
      }
    },
    startWorkers: async (workers, onJob) => {
      await boss.work<NoopJobPayload>(
        queue,
        {
          localConcurrency: workers,
          batchSize: options.batchSize,
          burstWhenBatchFull: true,
          pollingIntervalSeconds: 0.5,
        },
        async (jobs) => {
          for (const job of jobs) onJob(job.data);
        },
      );
    },
    enqueueOne: async (payload) => {
      await boss.send(queue, payload);
    },
    stop: async () => {
      await boss.stop({ graceful: true, timeout: 10_000 });
    },
  };
};
