import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { nodeFlags } from "@tandem/server";

export const mainScript = fileURLToPath(new URL("../../packages/server/src/main.ts", import.meta.url));

export interface SpawnedTandem {
  readonly child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  readonly output: () => string;
  /** Resolves with the URL once the server says it is listening. */
  readonly listening: Promise<string>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `tandem serve` as a separate OS process, on the same Node as the tests, with Tandem's Node flags. */
export const spawnTandem = (env: Record<string, string>): SpawnedTandem => {
  const child = spawn(process.execPath, [...nodeFlags, mainScript, "serve"], {
    env: { PATH: process.env.PATH ?? "", PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const listening = new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = output.match(/listening on (http:\/\/\S+)/);
      if (match?.[1]) resolve(match[1]);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    void exited.then(() => reject(new Error(`tandem exited before listening:\n${output}`)));
  });
  listening.catch(() => {});
  return { child, output: () => output, listening, exited };
};
