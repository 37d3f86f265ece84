import { runInChildProcess } from "./ChildProcessRpc.ts";

const tasksModule = new URL("./measuredTasksMain.ts", import.meta.url);

/** The task names measuredTasksMain.ts answers. */
export type MeasuredTask =
  | "sourceRead"
  | "naiveImport"
  | "naivePgliteImport"
  | "copyImport"
  | "naiveReconcile"
  | "copyAntiJoinReconcile"
  | "tandemImport"
  | "tandemDelta"
  | "tandemReconcile"
  | "graphileWorkerQueue"
  | "graphileWorkerBatchedQueue"
  | "pgBossQueue"
  | "tandemQueue";

/** Runs one measured task in a fresh process: its result and that process's peak RSS. */
export const runMeasured = <A>(task: MeasuredTask, input: unknown) => runInChildProcess<A>(tasksModule, task, input);
