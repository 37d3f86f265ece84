import type { SyncTarget } from "@tandem/core";
import { createHubSpotFake, createTestConnection, hubSpotFakeToken, hubSpotHandlers } from "@tandem/testkit";
import { Effect } from "effect";
import type { HttpHandler } from "msw";
import { setupServer } from "msw/node";
import { afterAll, beforeAll } from "vitest";

/**
 * The HubSpot fake (MSW) on the real clock, for engine tests whose worker pushes in the
 * background. Registers the suite's MSW lifecycle; `handlers` are served beside the fake's (another
 * endpoint the test mocks, an LLM). `connect` empties the fake and connects a new tenant's
 * `connector` (HubSpot, or a variant of it the engine knows) to it: the contacts target.
 */
export const hubSpotOverMsw = (options: {
  readonly baseUrl: string;
  readonly handlers?: ReadonlyArray<HttpHandler>;
}) => {
  const fake = createHubSpotFake({ baseUrl: options.baseUrl });
  const server = setupServer(...hubSpotHandlers(fake), ...(options.handlers ?? []));
  beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
  afterAll(() => {
    fake.close();
    server.close();
  });
  const connect = (connector = "hubspot") =>
    Effect.gen(function* () {
      fake.reset();
      const ids = yield* createTestConnection(connector, { baseUrl: options.baseUrl, accessToken: hubSpotFakeToken });
      return { ...ids, entity: "contacts" } satisfies SyncTarget;
    });
  return { fake, server, connect };
};
