import { nodeFlags } from "@tandem/server/runtimeFlags";
import { runInChildProcess } from "./ChildProcessRpc.ts";

const tasksModule = new URL("./measuredTasksMain.ts", import.meta.url);

/** The task names measuredTasksMain.ts answers. */
export type MeasuredTask =
  | "sourceRead"
  | "naiveImport"
  | "naivePgliteImport"
  | "copyImport"
  | "copyIntoRecordsTable"
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
