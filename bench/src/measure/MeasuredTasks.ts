import { nodeFlags } from "@tandem/server/runtimeFlags";
import { runInChildProcess, startChildProcess } from "./ChildProcessRpc.ts";

const tasksModule = new URL("./measuredTasksMain.ts", import.meta.url);

/** The task names measuredTasksMain.ts answers. */
export type MeasuredTask =
  | "sourceRead"
  | "naiveImport"
  | "naivePgliteImport"
  | "copyImport"
  | "copyIntoRecordsTable"
  | "readAndCopyIntoRecordsTable"
  | "naiveReconcile"
  | "copyAntiJoinReconcile"
  | "tandemImport"
  | "tandemDelta"
  | "tandemReconcile"
  | "graphileWorkerQueue"
  | "graphileWorkerBatchedQueue"
  | "pgBossQueue"
  | "tandemQueue";

/**
 * Runs one measured task in a fresh process: its result and that process's peak RSS. Tandem's
 * tasks run on the Node flags Tandem's server runs with (`nodeFlags`), the baselines on Node's
 * defaults.
 */
export const runMeasured = <A>(task: MeasuredTask, input: unknown) =>
  runInChildProcess<A>(tasksModule, task, input, task.startsWith("tandem") ? { execArgv: nodeFlags } : {});

/** A process that runs several measured tasks in turn, as a long-running server would. */
export interface MeasuredProcess {
  /** One task's result, and the process's peak RSS since it started (not since this task). */
  readonly run: <A>(
    task: MeasuredTask,
    input: unknown,
  ) => Promise<{ readonly value: A; readonly peakRssBytes: number }>;
  readonly close: () => Promise<void>;
}

/** Starts a process for Tandem's tasks, on Tandem's Node flags, that stays up until `close`. */
export const startTandemProcess = async (): Promise<MeasuredProcess> => {
  const child = await startChildProcess(tasksModule, { execArgv: nodeFlags });
  return {
    run: async <A>(task: MeasuredTask, input: unknown) => {
      const value = await child.call<A>(task, input);
      return { value, peakRssBytes: await child.maxRssBytes() };
    },
    close: child.close,
  };
};
