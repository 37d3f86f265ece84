import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The Node 24 binary of the workspace (runs .ts directly). */
const nodeBin = fileURLToPath(new URL("../../node_modules/.bin/node", import.meta.url));
const workerFixture = fileURLToPath(new URL("./fixtures/worker.ts", import.meta.url));

export interface WorkerConfig {
  readonly url: string;
  readonly name: string;
  readonly concurrency?: number;
  readonly leaseMs?: number;
  readonly heartbeatMs?: number;
  readonly reapMs?: number;
  readonly pollMs?: number;
  readonly scheduler?: boolean;
  readonly poolSize?: number;
}

export interface WorkerProcess {
  readonly name: string;
  readonly process: ChildProcess;
  readonly events: Array<Record<string, unknown>>;
  /** The worker id it writes in `locked_by` (known once ready). */
  workerId: string;
  readonly waitFor: (
    predicate: (e: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ) => Promise<Record<string, unknown>>;
  readonly send: (command: Record<string, unknown>) => void;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly output: () => string;
}

/** Spawns one worker OS process (the `fixture` script, default the queue worker) and waits until it is ready. */
export const spawnWorker = async (
  config: WorkerConfig & Record<string, unknown>,
  fixture: string = workerFixture,
): Promise<WorkerProcess> => {
  const child = spawn(nodeBin, [fixture, JSON.stringify(config)], { stdio: ["pipe", "pipe", "pipe"] });
  const events: Array<Record<string, unknown>> = [];
  let log = "";
  const waiters = new Set<() => void>();
  let buffer = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    log += chunk.toString();
    let newline = buffer.indexOf("\n");
    while (newline >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (line.startsWith('{"event"')) events.push(JSON.parse(line));
      newline = buffer.indexOf("\n");
    }
    for (const w of waiters) w();
  });
  child.stderr!.on("data", (chunk: Buffer) => {
    log += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => {
      for (const w of waiters) w();
      resolve({ code, signal });
    }),
  );
  const waitFor = (predicate: (e: Record<string, unknown>) => boolean, timeoutMs = 15_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const found = events.find(predicate);
        if (found !== undefined) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          waiters.delete(check);
          clearTimeout(timer);
          reject(new Error(`${config.name} exited before the event; output:\n${log}`));
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`${config.name}: no matching event in ${timeoutMs} ms; output:\n${log}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  const handle: WorkerProcess = {
    name: config.name,
    process: child,
    events,
    workerId: "",
    waitFor,
    send: (command) => child.stdin!.write(`${JSON.stringify(command)}\n`),
    exited,
    output: () => log,
  };
  // Generous: a loaded machine takes many seconds to start a process that loads the engine.
  const ready = await waitFor((e) => e.event === "ready", 60_000);
  handle.workerId = String(ready.worker);
  return handle;
};

/** Spawns `n` workers in parallel. */
export const spawnWorkers = (n: number, config: Omit<WorkerConfig, "name">) =>
  Promise.all(Array.from({ length: n }, (_, i) => spawnWorker({ ...config, name: `w${i + 1}` })));

/** SIGTERM (graceful) and wait; a process that hangs gets SIGKILL after `graceMs`. */
export const stopWorkers = async (workers: ReadonlyArray<WorkerProcess>, graceMs = 8_000) => {
  await Promise.all(
    workers.map(async (w) => {
      if (w.process.exitCode !== null || w.process.signalCode !== null) return w.exited;
      w.process.kill("SIGTERM");
      const timer = setTimeout(() => w.process.kill("SIGKILL"), graceMs);
      const result = await w.exited;
      clearTimeout(timer);
      return result;
    }),
  );
};

/** Polls `read` until `check` holds. */
export const waitUntil = async <A>(read: () => Promise<A>, check: (a: A) => boolean, timeoutMs = 20_000) => {
  const started = Date.now();
  while (true) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() - started > timeoutMs)
      throw new Error(`condition not met in ${timeoutMs} ms: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};
