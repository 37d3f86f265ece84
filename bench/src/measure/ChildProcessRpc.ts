import { type ChildProcess, fork } from "node:child_process";
import { TandemNotIntegrated } from "../tandem/TandemNotIntegrated.ts";

/**
 * Request/response over the IPC channel of a forked Node process. The bench runs everything it
 * measures in a process of its own: peak RSS then belongs to the work measured and not to the
 * harness, each run starts on a fresh heap, and the source API, the database clients and the
 * load generator do not share one event loop.
 */

type Handlers = Record<string, (input: any) => unknown>;

interface Request {
  readonly id: number;
  readonly method: string;
  readonly input: unknown;
}

type Reply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly notIntegrated: boolean; readonly message: string };

const readyMessage = "child-rpc-ready";

/**
 * Child side: answers calls with `handlers`, plus `maxRssBytes` (the peak resident set of this
 * process since it started, from the kernel's accounting) and `exit`.
 */
export const serveChildRpc = (
  handlers: Handlers,
  options: {
    /** Called when the harness asks the process to exit, before it does (e.g. to close a pool). */
    readonly beforeExit?: () => Promise<void>;
  } = {},
): void => {
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error("this module runs as a child process of the bench harness (fork with IPC)");
  const all: Handlers = {
    ...handlers,
    // resourceUsage reports kilobytes
    maxRssBytes: () => process.resourceUsage().maxRSS * 1024,
    exit: async () => {
      await options.beforeExit?.();
      setImmediate(() => process.exit(0));
      return null;
    },
  };
  // The harness went away (finished, crashed or interrupted): a child never outlives it.
  process.on("disconnect", () => process.exit(1));
  process.on("message", (raw) => {
    const request = raw as Request;
    const handler = all[request.method];
    Promise.resolve()
      .then(() => {
        if (handler === undefined) throw new Error(`unknown method ${request.method}`);
        return handler(request.input);
      })
      .then(
        (value) => send({ id: request.id, ok: true, value } satisfies Reply),
        (error: unknown) =>
          send({
            id: request.id,
            ok: false,
            notIntegrated: error instanceof TandemNotIntegrated,
            message: error instanceof Error ? (error.stack ?? error.message) : String(error),
          } satisfies Reply),
      );
  });
  send(readyMessage);
};

/** Parent side of a child started with `startChildProcess`. */
export interface ChildProcessClient {
  readonly call: <A = unknown>(method: string, input?: unknown) => Promise<A>;
  /** Peak RSS of the child so far, in bytes. */
  readonly maxRssBytes: () => Promise<number>;
  /** Asks the child to exit and waits for it (kills it if it does not go within 5 s). */
  readonly close: () => Promise<void>;
  readonly pid: number;
}

/**
 * With `BENCH_CPU_PROF_DIR` set, every child writes a V8 CPU profile there when it exits
 * (`--cpu-prof`), named by Node after its pid: open it in Chrome DevTools or VS Code.
 */
const profilingArgv = (): ReadonlyArray<string> => {
  const dir = process.env.BENCH_CPU_PROF_DIR;
  return dir === undefined || dir === "" ? [] : ["--cpu-prof", `--cpu-prof-dir=${dir}`];
};

/** Forks `modulePath` (a `.ts` module that calls `serveChildRpc`) and waits until it is ready. */
export const startChildProcess = async (
  modulePath: string | URL,
  options: { readonly env?: Record<string, string>; readonly execArgv?: ReadonlyArray<string> } = {},
): Promise<ChildProcessClient> => {
  const child: ChildProcess = fork(modulePath, [], {
    serialization: "advanced",
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    env: { ...process.env, ...options.env },
    execArgv: [...(options.execArgv ?? []), ...profilingArgv()],
  });
  const pending = new Map<number, { resolve: (v: any) => void; reject: (e: unknown) => void }>();
  let nextId = 1;
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exited = true;
      for (const p of pending.values()) p.reject(new Error(`child ${modulePath} exited (${code ?? signal})`));
      pending.clear();
      resolve();
    });
  });
  await new Promise<void>((resolve, reject) => {
    const onMessage = (message: unknown) => {
      if (message !== readyMessage) return;
      child.off("message", onMessage);
      child.off("exit", onExit);
      resolve();
    };
    const onExit = (code: number | null) =>
      reject(new Error(`child ${modulePath} exited before it was ready (${code})`));
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
  child.on("message", (raw) => {
    const reply = raw as Reply;
    const waiter = pending.get(reply.id);
    if (waiter === undefined) return;
    pending.delete(reply.id);
    if (reply.ok) waiter.resolve(reply.value);
    else if (reply.notIntegrated)
      waiter.reject(new TandemNotIntegrated(reply.message.split("\n")[0]!.replace(/^\w+: /, "")));
    else waiter.reject(new Error(`in child ${modulePath}: ${reply.message}`));
  });
  const call = <A>(method: string, input?: unknown) =>
    new Promise<A>((resolve, reject) => {
      if (exited) return reject(new Error(`child ${modulePath} has exited`));
      const id = nextId++;
      pending.set(id, { resolve, reject });
      child.send({ id, method, input } satisfies Request);
    });
  return {
    call,
    maxRssBytes: () => call<number>("maxRssBytes"),
    close: async () => {
      if (exited) return;
      await call("exit").catch(() => undefined);
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exitedPromise;
      clearTimeout(timer);
    },
    pid: child.pid ?? -1,
  };
};

/**
 * Runs one call in a fresh child and closes it: the figure, and the peak RSS of the process that
 * did the work.
 */
export const runInChildProcess = async <A>(
  modulePath: string | URL,
  method: string,
  input: unknown,
  options: { readonly execArgv?: ReadonlyArray<string> } = {},
): Promise<{ readonly value: A; readonly peakRssBytes: number }> => {
  const child = await startChildProcess(modulePath, options);
  try {
    const value = await child.call<A>(method, input);
    return { value, peakRssBytes: await child.maxRssBytes() };
  } finally {
    await child.close();
  }
};
