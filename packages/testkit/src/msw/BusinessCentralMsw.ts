import type { BusinessCentralFake } from "@tandem/sandbox";
import { http } from "msw";
import { forwardToFake } from "./forwardToFake.ts";

/**
 * MSW handlers for the fake's token endpoint (`POST {authorityUrl}/{tenant}/oauth2/v2.0/token`)
 * and every request under its API origin.
 *
 * @example
 * const fake = createBusinessCentralFake({ clock: createManualClock() });
 * const server = setupServer(...businessCentralHandlers(fake));
 */
export const businessCentralHandlers = (fake: BusinessCentralFake) => [
  http.post(`${fake.authorityUrl}/:tenant/oauth2/v2.0/token`, forwardToFake(fake.handle)),
  http.all(`${fake.baseUrl}/*`, forwardToFake(fake.handle)),
];
