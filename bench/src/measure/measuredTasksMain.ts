/**
 * The process every measured run happens in (one fresh process per run, see ChildProcessRpc):
 * the baselines and Tandem's hooks, by name. Each task imports its code when called, so that a
 * process measuring one system does not carry the others' modules in its peak RSS.
 */
import type { BaselineTarget } from "../baselines/ImportBaselines.ts";
import type { QueueRunOptions } from "../queues/QueueMeasurement.ts";
import type { QueueSubject } from "../queues/QueueSubject.ts";
import type { TandemSyncInput } from "../tandem/TandemHooks.ts";
import { serveChildRpc } from "./ChildProcessRpc.ts";

type QueueInput = QueueRunOptions & { readonly databaseUrl: string; readonly batchSize: number };

const importBaselines = () => import("../baselines/ImportBaselines.ts");
const reconcileBaselines = () => import("../baselines/ReconcileBaselines.ts");
const tandem = () => import("../tandem/TandemHooks.ts");
/**
 * The engine's modules, which the sync hooks import on their first call: loaded before the clock
 * starts, or a delta run (a fraction of a second) would be timed mostly loading Effect and Kysely.
 */
let closeEngines: (() => Promise<void>) | undefined;
const tandemSyncModules = async () => {
  const sync = await import("../tandem/TandemSync.ts");
  closeEngines = sync.closeEngines;
};

const queue = async (input: QueueInput, subject: QueueSubject) => {
  const { measureQueue } = await import("../queues/QueueMeasurement.ts");
  return measureQueue(subject, input);
};

serveChildRpc(
  {
    sourceRead: async (input: BaselineTarget) => (await importBaselines()).sourceRead(input),
    naiveImport: async (input: BaselineTarget & { readonly createTable: boolean }) =>
      (await importBaselines()).naiveImport(input),
    naivePgliteImport: async (input: BaselineTarget) => (await importBaselines()).naivePgliteImport(input),
    copyImport: async (input: BaselineTarget) => (await importBaselines()).copyImport(input),
    copyIntoRecordsTable: async (input: BaselineTarget) =>
      (await import("../baselines/CopyIntoRecords.ts")).copyIntoRecordsTable(input),
    readAndCopyIntoRecordsTable: async (input: BaselineTarget) =>
      (await import("../baselines/CopyIntoRecords.ts")).readAndCopyIntoRecordsTable(input),
    naiveReconcile: async (input: BaselineTarget) => (await reconcileBaselines()).naiveReconcile(input),
    copyAntiJoinReconcile: async (input: BaselineTarget) => (await reconcileBaselines()).copyAntiJoinReconcile(input),
    tandemImport: async (input: TandemSyncInput) => {
      const { runTandemImport } = await tandem();
      await tandemSyncModules();
      // The hook times its own run (EntitySync.run), after its services are up.
      return runTandemImport(input);
    },
    tandemDelta: async (input: TandemSyncInput) => {
      const { runTandemDelta } = await tandem();
      await tandemSyncModules();
      // The hook times its own run (EntitySync.run), after its services are up.
      return runTandemDelta(input);
    },
    tandemReconcile: async (input: TandemSyncInput) => {
      const { runTandemReconcile } = await tandem();
      await tandemSyncModules();
      // The hook times its own run (EntitySync.run), after its services are up.
      return runTandemReconcile(input);
    },
    graphileWorkerQueue: async (input: QueueInput) => {
      const { graphileWorkerSubject } = await import("../queues/GraphileWorkerSubject.ts");
      return queue(input, graphileWorkerSubject(input.databaseUrl));
    },
    graphileWorkerBatchedQueue: async (input: QueueInput) => {
      const { graphileWorkerSubject } = await import("../queues/GraphileWorkerSubject.ts");
      return queue(input, graphileWorkerSubject(input.databaseUrl, { batchSize: input.batchSize }));
    },
    pgBossQueue: async (input: QueueInput) => {
      const { pgBossSubject } = await import("../queues/PgBossSubject.ts");
      return queue(input, pgBossSubject(input.databaseUrl, { batchSize: input.batchSize }));
    },
    tandemQueue: async (input: QueueInput) =>
      // As many jobs held at once as pg-boss holds: `workers` fetchers of `batchSize` each.
      queue(
        input,
        (await tandem()).tandemQueueSubject(input.databaseUrl, {
          prefetch: input.workers * input.batchSize - input.workers,
        }),
      ),
  },
  // A process that ran several syncs keeps the engine open between them (TandemSync.ts).
  { beforeExit: () => closeEngines?.() ?? Promise.resolve() },
);
