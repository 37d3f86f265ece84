import { finalJobStatuses, type JobProgress, SyncStatus } from "@tandem/core";
import { type Cause, Context, Data, Effect, Exit, Layer, Runtime } from "effect";

/** How often a watched job is read: progress lives in the database, shared by every process. */
const WATCH_INTERVAL_MS = 250;

/** A tenant already holds as many `jobs.watch` subscriptions as it may. */
export class TooManyWatchers extends Data.TaggedError("TooManyWatchers")<{ readonly limit: number }> {
  override get message() {
    return `at most ${this.limit} jobs.watch subscriptions at once per tenant (TANDEM_MAX_WATCHERS_PER_TENANT); close one first`;
  }
}

/** The shared read of a watched job failed (the job is not the tenant's, or is gone). */
export class JobWatchFailed extends Data.TaggedError("JobWatchFailed")<{ readonly cause: Cause.Cause<unknown> }> {}

/** One job's progress read every interval for all its watchers, until the last leaves or the job ends. */
interface SharedPoll {
  watchers: number;
  /** The last read that differed from the one before; `version` counts them. */
  latest: Exit.Exit<JobProgress, unknown> | undefined;
  version: number;
  ended: boolean;
  readonly wakeUps: Set<() => void>;
}

const sameProgress = (a: Exit.Exit<JobProgress, unknown> | undefined, b: JobProgress) =>
  a !== undefined &&
  Exit.isSuccess(a) &&
  JSON.stringify({ ...a.value, recordsPerSecond: 0 }) === JSON.stringify({ ...b, recordsPerSecond: 0 });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Live job progress for `jobs.watch`. Each watcher used to read the job from the database every
 * 250 ms: 200 watchers took the database from 8 to 1,380 transactions a second. Now the watchers
 * of one job share one poll (started by the first, stopped when the last leaves), and a tenant
 * holds at most `maxPerTenant` watchers per process.
 */
export class JobWatchers extends Context.Tag("@tandem/server/JobWatchers")<
  JobWatchers,
  {
    /**
     * The job's progress whenever it changes, the last one when the job ends; fails with
     * TooManyWatchers over the tenant's cap, JobWatchFailed when the job cannot be read.
     * Ends early when `signal` aborts.
     */
    readonly watch: (tenantId: string, jobId: string, signal: AbortSignal) => AsyncGenerator<JobProgress>;
  }
>() {
  /** Needs SyncStatus. */
  static readonly layer = (options: { readonly maxPerTenant: number }) =>
    Layer.scoped(
      JobWatchers,
      Effect.gen(function* () {
        const runtime = yield* Effect.runtime<SyncStatus>();
        const read = (tenantId: string, jobId: string) =>
          Runtime.runPromiseExit(runtime)(Effect.flatMap(SyncStatus, (s) => s.progress(tenantId, jobId)));
        const polls = new Map<string, SharedPoll>();
        const watchersOf = new Map<string, number>();
        let closed = false;

        const publish = (poll: SharedPoll, exit: Exit.Exit<JobProgress, unknown>) => {
          poll.latest = exit;
          poll.version += 1;
          for (const wake of poll.wakeUps) wake();
          poll.wakeUps.clear();
        };
        const end = (key: string, poll: SharedPoll) => {
          poll.ended = true;
          for (const wake of poll.wakeUps) wake();
          poll.wakeUps.clear();
          if (polls.get(key) === poll) polls.delete(key);
        };

        const run = async (key: string, poll: SharedPoll, tenantId: string, jobId: string) => {
          while (poll.watchers > 0 && !closed) {
            const exit = await read(tenantId, jobId);
            if (Exit.isFailure(exit) || !sameProgress(poll.latest, exit.value)) publish(poll, exit);
            if (Exit.isFailure(exit) || finalJobStatuses.has(exit.value.status)) break;
            await sleep(WATCH_INTERVAL_MS);
          }
          end(key, poll);
        };

        /** Resolves at the poll's next change or end, or when the watcher's request is aborted. */
        const nextChange = (poll: SharedPoll, signal: AbortSignal) =>
          new Promise<void>((resolve) => {
            const done = () => {
              signal.removeEventListener("abort", done);
              poll.wakeUps.delete(done);
              resolve();
            };
            poll.wakeUps.add(done);
            signal.addEventListener("abort", done);
          });

        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            closed = true;
            for (const [key, poll] of polls) end(key, poll);
          }),
        );

        const watch = async function* (tenantId: string, jobId: string, signal: AbortSignal) {
          const held = watchersOf.get(tenantId) ?? 0;
          if (held >= options.maxPerTenant) throw new TooManyWatchers({ limit: options.maxPerTenant });
          watchersOf.set(tenantId, held + 1);
          // Keyed by tenant too: another tenant's watcher of the same id reads (and is refused) on its own.
          const key = `${tenantId}/${jobId}`;
          let poll = polls.get(key);
          if (poll === undefined) {
            poll = { watchers: 0, latest: undefined, version: 0, ended: false, wakeUps: new Set() };
            polls.set(key, poll);
            poll.watchers += 1;
            void run(key, poll, tenantId, jobId);
          } else poll.watchers += 1;
          try {
            let seen = 0;
            while (!signal.aborted) {
              if (poll.version > seen && poll.latest !== undefined) {
                seen = poll.version;
                const exit = poll.latest;
                if (Exit.isFailure(exit)) throw new JobWatchFailed({ cause: exit.cause });
                yield exit.value;
                if (finalJobStatuses.has(exit.value.status)) return;
              } else if (poll.ended) return;
              else await nextChange(poll, signal);
            }
          } finally {
            watchersOf.set(tenantId, (watchersOf.get(tenantId) ?? 1) - 1);
            if (watchersOf.get(tenantId) === 0) watchersOf.delete(tenantId);
            poll.watchers -= 1;
            if (poll.watchers === 0 && polls.get(key) === poll) polls.delete(key);
          }
        };
        return { watch };
      }),
    );
}
