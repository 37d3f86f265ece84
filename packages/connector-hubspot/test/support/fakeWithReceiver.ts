import type { InboundWebhookRequest } from "@tandem/core";
import { createHubSpotFake, createManualClock, hubSpotHandlers } from "@tandem/testkit";
import { HttpResponse, http } from "msw";
import { setupServer } from "msw/node";
import { afterAll, beforeAll } from "vitest";

/**
 * The HubSpot fake (MSW) on a manual clock, plus a webhook receiver that records what the
 * fake's emitter POSTs, in arrival order. Registers the suite's MSW lifecycle. `server` is the MSW
 * server, for a test that hooks the fake's request handling (`server.use`, then `resetHandlers`).
 */
export const hubSpotFakeWithReceiver = (options: {
  readonly baseUrl: string;
  readonly receiverUrl: string;
  readonly start: number;
}) => {
  const clock = createManualClock(options.start);
  const fake = createHubSpotFake({ baseUrl: options.baseUrl, clock });
  const received: Array<InboundWebhookRequest> = [];
  const server = setupServer(
    ...hubSpotHandlers(fake),
    http.post(options.receiverUrl, async ({ request }) => {
      received.push({
        method: request.method,
        url: request.url,
        headers: new Headers(request.headers),
        rawBody: await request.text(),
      });
      return new HttpResponse(null, { status: 204 });
    }),
  );
  beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
  afterAll(() => {
    fake.close();
    server.close();
  });
  return { clock, fake, received, server };
};
