import { HttpResponse, http } from "msw";
import type { FakeHttpRequest, FakeHttpResponse } from "./HubSpotApi.ts";

/**
 * MSW handlers that forward every request under `baseUrl` to the fake's
 * transport-independent `handle`.
 */
export const hubSpotMswHandlers = (
  baseUrl: string,
  handle: (request: FakeHttpRequest) => Promise<FakeHttpResponse>,
) => [
  http.all(`${baseUrl}/*`, async ({ request }) => {
    const response = await handle({
      method: request.method,
      url: new URL(request.url),
      headers: request.headers,
      body: await request.text(),
      signal: request.signal,
    });
    if (response.body === undefined)
      return new HttpResponse(null, { status: response.status, headers: response.headers });
    return new HttpResponse(JSON.stringify(response.body), { status: response.status, headers: response.headers });
  }),
];
