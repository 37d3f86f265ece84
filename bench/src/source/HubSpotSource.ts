import { type ChildProcessClient, startChildProcess } from "../measure/ChildProcessRpc.ts";

/** The source API of a scenario: the HubSpot fake in its own process, seeded with `records` contacts. */
export interface HubSpotSource {
  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  readonly url: string;
  /** Changes a share of live contacts at the source; the ids changed. */
  readonly change: (share: number, label: string) => Promise<ReadonlyArray<string>>;
  /** Archives (deletes) a share of live contacts at the source; the ids archived. */
  readonly archive: (share: number) => Promise<ReadonlyArray<string>>;
  /** Peak RSS of the source process (for the record; it is not Tandem's). */
  readonly maxRssBytes: () => Promise<number>;
  readonly close: () => Promise<void>;
}

export const startHubSpotSource = async (options: {
  readonly records: number;
  readonly maxPageSize: number;
}): Promise<HubSpotSource> => {
  const child: ChildProcessClient = await startChildProcess(new URL("./hubSpotSourceMain.ts", import.meta.url));
  try {
    const { url } = await child.call<{ url: string }>("start", options);
    return {
      url,
      change: (share, label) => child.call("change", { share, label }),
      archive: (share) => child.call("archive", { share }),
      maxRssBytes: child.maxRssBytes,
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
