import { type ChildProcessClient, startChildProcess } from "../measure/ChildProcessRpc.ts";

/** Requests the push target answered, by kind. */
export interface PushTargetRequests {
  readonly total: number;
  readonly batchUpdates: number;
  readonly batchReads: number;
  readonly singlePatches: number;
}

/** The push scenario's vendor: the HubSpot fake in its own process (see `hubSpotPushTargetMain.ts`). */
export interface HubSpotPushTarget {
  readonly url: string;
  /** The seeded contacts' ids. */
  readonly ids: ReadonlyArray<string>;
  readonly requestCounts: () => Promise<PushTargetRequests>;
  readonly setLatency: (ms: number) => Promise<void>;
  /** How many of `ids` hold the job title `${prefix} ${id}`. */
  readonly countWithJobTitle: (ids: ReadonlyArray<string>, prefix: string) => Promise<number>;
  /** Starts waiting for the record's job title to become `value` (`written` reports when it did). */
  readonly await: (id: string, value: string) => Promise<void>;
  /** When each awaited value was written (epoch ms by id), and how many are still awaited. */
  readonly written: () => Promise<{
    readonly at: Readonly<Record<string, number>>;
    readonly stillAwaited: number;
  }>;
  /** CPU time the fake's process has used so far, in milliseconds. */
  readonly cpuMs: () => Promise<number>;
  readonly close: () => Promise<void>;
}

export const startHubSpotPushTarget = async (options: { readonly records: number }): Promise<HubSpotPushTarget> => {
  const child: ChildProcessClient = await startChildProcess(new URL("./hubSpotPushTargetMain.ts", import.meta.url));
  try {
    const { url, ids } = await child.call<{ url: string; ids: Array<string> }>("start", options);
    return {
      url,
      ids,
      requestCounts: () => child.call("requestCounts"),
      setLatency: async (ms) => {
        await child.call("setLatency", { ms });
      },
      countWithJobTitle: (ids, prefix) => child.call("countWithJobTitle", { ids, prefix }),
      await: async (id, value) => {
        await child.call("await", { id, value });
      },
      written: () => child.call("written"),
      cpuMs: () => child.call("cpuMs"),
      close: async () => {
        await child.call("stop").catch(() => undefined);
        await child.close();
      },
    };
  } catch (error) {
    await child.close();
    throw error;
  }
};
