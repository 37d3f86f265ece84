import { Context, Effect, Layer } from "effect";
import { ConnectorCredentials } from "../connector/ConnectorCredentials.ts";
import { Database } from "../db/Database.ts";
import { RunHistory } from "../ops/RunHistory.ts";
import { type JobHandlerSpec, JobQueue, type RunningJob } from "../queue/JobQueue.ts";
import { Locks } from "../queue/Locks.ts";
import { RetryPolicy } from "../queue/RetryPolicy.ts";
import { SYNC_JOB_KIND } from "../queue/Scheduler.ts";
import { Connections } from "../tenancy/Connections.ts";
import { OutboundWebhooks, WEBHOOK_DELIVERY_JOB_KIND } from "../webhooks/OutboundWebhooks.ts";
import { runDeliveryJob } from "./deliveryJobHandler.ts";
import { EntitySync } from "./EntitySync.ts";
import { PUSH_DRAIN_JOB_KIND, runPushDrainJob } from "./push/pushDrainJob.ts";
import { runSyncJob, type SyncJobHandlerDeps } from "./syncJobHandler.ts";
import { runWebhookEventJob, WEBHOOK_EVENT_JOB_KIND } from "./webhookEventJob.ts";

/**
 * The queue job handlers of syncs, as a map a worker registers: sync runs (with history and
 * progress), push drains (local changes written to the vendor), inbound webhook events, and
 * outbound deliveries. SyncTriggers, LocalChanges and the webhook intake queue these jobs.
 */
export class SyncJobHandlers extends Context.Tag("@tandem/core/SyncJobHandlers")<
  SyncJobHandlers,
  {
    /** The handlers a worker needs for everything syncs enqueue. */
    readonly handlers: Readonly<Record<string, JobHandlerSpec>>;
  }
>() {
  /**
   * Needs Database, EntitySync, RunHistory, RetryPolicy, OutboundWebhooks, Locks,
   * ConnectorCredentials, Connections and JobQueue.
   */
  static readonly layerNoDeps = Layer.effect(
    SyncJobHandlers,
    Effect.gen(function* () {
      const deps: SyncJobHandlerDeps = {
        db: yield* Database,
        engine: yield* EntitySync,
        runs: yield* RunHistory,
        policy: yield* RetryPolicy,
        outbound: yield* OutboundWebhooks,
        locks: yield* Locks,
      };
      const credentials = yield* ConnectorCredentials;
      const pushDeps = {
        engine: deps.engine,
        connections: yield* Connections,
        queue: yield* JobQueue,
        policy: deps.policy,
        db: deps.db,
      };
      /** Before a job that failed with AuthExpired runs once more (see ConnectorCredentials.forget). */
      const refreshCredentials = (job: RunningJob) =>
        job.connectionId === null ? Effect.void : credentials.forget(job.connectionId);
      return SyncJobHandlers.of({
        handlers: {
          [SYNC_JOB_KIND]: { run: (job) => runSyncJob(deps, job), refreshCredentials },
          [PUSH_DRAIN_JOB_KIND]: { run: (job) => runPushDrainJob(pushDeps, job), refreshCredentials },
          [WEBHOOK_EVENT_JOB_KIND]: { run: (job) => runWebhookEventJob(deps, job), refreshCredentials },
          [WEBHOOK_DELIVERY_JOB_KIND]: { run: (job) => runDeliveryJob(deps, job) },
        },
      });
    }),
  );

  /** Needs Database and the roots below EntitySync and OutboundWebhooks. */
  static readonly layer = SyncJobHandlers.layerNoDeps.pipe(
    Layer.provide(
      Layer.mergeAll(
        EntitySync.layer,
        RunHistory.layer,
        OutboundWebhooks.layer,
        Locks.layer,
        ConnectorCredentials.layer,
        Connections.layer,
        JobQueue.layer,
      ),
    ),
  );
}

export { PUSH_DRAIN_JOB_KIND, type PushDrainPayload } from "./push/pushDrainJob.ts";
export { WEBHOOK_EVENT_JOB_KIND, type WebhookEventPayload, type WebhookRecordEvents } from "./webhookEventJob.ts";
