import type { HubSpotFake } from "@tandem/sandbox";
import { http } from "msw";
import { forwardToFake } from "./forwardToFake.ts";

/**
 * MSW handlers answering every request under the fake's `baseUrl` with the fake.
 *
 * @example
 * const fake = createHubSpotFake();
 * const server = setupServer(...hubSpotHandlers(fake));
 */
export const hubSpotHandlers = (fake: HubSpotFake) => [http.all(`${fake.baseUrl}/*`, forwardToFake(fake.handle))];
