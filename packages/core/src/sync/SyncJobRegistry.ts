import { Effect, type Runtime, type Scope } from "effect";
import type {
  InvalidSchedule,
  SyncInterval,
  SyncJob,
  SyncResult,
  SyncSourceFailed,
  UnknownSyncJob,
} from "./SyncJob.ts";

/**
 * The registered SyncJob definitions of this process, by name. Definitions are code, so every
 * process of an application registers the same ones when it loads them; only triggers and
 * schedules are state, and those go to the engine when one runs here (`DurableSyncJobs`).
 */
const definitions = new Map<string, SyncJob<any, any>>();

/** Registers a definition, replacing one of the same name. */
export const registerDefinition = (job: SyncJob<any, any>): void => {
  definitions.set(job.name, job);
};

/** The definition registered under `name` in this process. */
export const definitionOf = (name: string): SyncJob<any, any> | undefined => definitions.get(name);

/**
 * Triggers and schedules of registered jobs on the engine's durable queue and Scheduler (see
 * SyncJobQueue). The functions capture the engine's services, so they run in any fiber;
 * `runtime` is the engine's, on which the Promise facade runs them (its clock, logger, tracer).
 */
export interface DurableSyncJobs {
  readonly runtime: Runtime.Runtime<never>;
  /** Enqueues a run (or joins the live one) and waits for its result. */
  readonly trigger: (name: string) => Effect.Effect<SyncResult, UnknownSyncJob | SyncSourceFailed>;
  /** Creates or replaces the job's cluster-wide schedule. */
  readonly schedule: (name: string, interval: SyncInterval) => Effect.Effect<void, UnknownSyncJob | InvalidSchedule>;
  /** Removes the job's cluster-wide schedule, if there is one. */
  readonly unschedule: (name: string) => Effect.Effect<void>;
}

/**
 * The engine this process runs, if any. A process-wide slot because the seed's Promise API
 * (`await triggerSync("erp-inventory")`) takes no runtime: the engine installs itself here for
 * as long as it runs, and the facade finds it. Only the route is held here; the triggers and
 * schedules themselves are rows in PostgreSQL.
 */
let durable: DurableSyncJobs | undefined;

/** The engine's triggers and schedules, when an engine runs in this process. */
export const durableSyncJobs = (): DurableSyncJobs | undefined => durable;

/**
 * Routes this process's triggers and schedules to `engine` until the Scope closes; then back to
 * what was installed before (an engine built inside another one's lifetime, as tests do).
 */
export const installDurableSyncJobs = (engine: DurableSyncJobs): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const previous = durable;
      durable = engine;
      return previous;
    }),
    (previous) =>
      Effect.sync(() => {
        if (durable === engine) durable = previous;
      }),
  ).pipe(Effect.asVoid);
