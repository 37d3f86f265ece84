import { type LoopbackServerOptions, serveOnLoopback } from "../LoopbackServer.ts";
import { createHubSpotFake, type HubSpotFake, type HubSpotFakeOptions } from "./HubSpotFake.ts";

export interface ServeHubSpotFakeOptions extends Omit<HubSpotFakeOptions, "baseUrl">, LoopbackServerOptions {
  /** Serve an existing fake instead of creating one. */
  readonly fake?: HubSpotFake;
}

/** A fake served over real HTTP. Point a connection's `baseUrl` at `url`. */
export interface ServedHubSpotFake {
  readonly url: string;
  readonly fake: HubSpotFake;
  readonly close: () => Promise<void>;
}

/**
 * Serves the HubSpot fake over node:http on loopback, for the demo and the benchmarks. Same
 * state logic as the testkit's MSW handlers (the fake's `handle`).
 *
 * @example
 * const served = await serveHubSpotFake({ port: 0 });
 * served.fake.seedContacts(3_000);
 * // connection config: { baseUrl: served.url, accessToken: hubSpotFakeToken }
 */
export const serveHubSpotFake = async (options: ServeHubSpotFakeOptions = {}): Promise<ServedHubSpotFake> => {
  let fake = options.fake;
  const served = await serveOnLoopback((url) => {
    fake ??= createHubSpotFake({ ...options, baseUrl: url });
    return fake.handle;
  }, options);
  return {
    url: served.url,
    fake: fake!,
    close: async () => {
      fake!.close();
      await served.close();
    },
  };
};
