import { stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { withClient } from "../BenchDatabase.ts";
import { startChildProcess } from "./ChildProcessRpc.ts";

/** A sync at least this slow is counted as a stall (the webhook ack target is 50 ms). */
export const stallMs = 50;

/** The disk's sync latencies over one probed window (see diskSyncProbeMain.ts). */
export interface DiskSyncSummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Syncs that took `stallMs` or more. */
  readonly stalls: number;
  /** Time spent in those stalls, summed. */
  readonly stalledMs: number;
}

export interface DiskSyncProbe {
  /**
   * Whether the probe's directory is on the device of the server's data directory: undefined
   * when that cannot be told (a server elsewhere, or a role that cannot read the setting).
   */
  readonly sameDeviceAsPostgres: (databaseUrl: string) => Promise<boolean | undefined>;
  /** Starts probing; the answer stops it and summarizes the window. */
  readonly during: <A>(work: () => Promise<A>) => Promise<{ readonly value: A; readonly disk: DiskSyncSummary }>;
  readonly close: () => Promise<void>;
}

const onDeviceOfPostgres = async (databaseUrl: string, directory: string): Promise<boolean | undefined> => {
  try {
    const dataDirectory = await withClient(databaseUrl, async (c) => {
      const { rows } = await c.query<{ data_directory: string }>("show data_directory");
      return rows[0]!.data_directory;
    });
    const [data, probe] = await Promise.all([stat(dataDirectory), stat(directory)]);
    return data.dev === probe.dev;
  } catch {
    // Not a superuser, or the server is on another machine: its disk is not this one's.
    return undefined;
  }
};

/** A probe process writing into the system's temporary directory. */
export const startDiskSyncProbe = async (): Promise<DiskSyncProbe> => {
  const directory = tmpdir();
  const child = await startChildProcess(new URL("./diskSyncProbeMain.ts", import.meta.url));
  return {
    sameDeviceAsPostgres: (databaseUrl) => onDeviceOfPostgres(databaseUrl, directory),
    during: async (work) => {
      await child.call("start", { directory });
      try {
        const value = await work();
        return { value, disk: await child.call<DiskSyncSummary>("stop") };
      } catch (error) {
        await child.call("stop").catch(() => undefined);
        throw error;
      }
    },
    close: () => child.close(),
  };
};
