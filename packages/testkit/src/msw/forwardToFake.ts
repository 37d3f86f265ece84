import type { FakeHttpRequest, FakeHttpResponse } from "@tandem/sandbox";
import { HttpResponse } from "msw";

/**
 * An MSW resolver handing the intercepted request to a fake's transport-independent `handle` and
 * its answer back to MSW (`body` JSON-encoded unless undefined, as over node:http).
 */
export const forwardToFake =
  (handle: (request: FakeHttpRequest) => Promise<FakeHttpResponse>) =>
  async ({ request }: { readonly request: Request }) => {
    const response = await handle({
      method: request.method,
      url: new URL(request.url),
      headers: request.headers,
      body: await request.text(),
      signal: request.signal,
    });
    return response.body === undefined
      ? new HttpResponse(null, { status: response.status, headers: response.headers })
      : new HttpResponse(JSON.stringify(response.body), { status: response.status, headers: response.headers });
  };
