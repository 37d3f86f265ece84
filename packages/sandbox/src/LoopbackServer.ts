import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import type { FakeHttpRequest, FakeHttpResponse } from "./hubspot/HubSpotApi.ts";

/** A fake's transport-independent entry point (every fake's `handle`). */
export type FakeRequestHandler = (request: FakeHttpRequest) => Promise<FakeHttpResponse>;

/** A fake served over real HTTP. */
export interface LoopbackServer {
  /** `http://<host>:<port>`: the origin the fake was made for. */
  readonly url: string;
  readonly close: () => Promise<void>;
}

export interface LoopbackServerOptions {
  /** Port to listen on; 0 picks a free one. Default 0. */
  readonly port?: number;
  /** Default 127.0.0.1 (loopback only: the fakes have no real authentication). */
  readonly host?: string;
}

const readBody = async (request: IncomingMessage): Promise<string> => {
  const chunks: Array<Buffer> = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
};

/**
 * Serves a fake over node:http, for processes that cannot share a test's MSW interception: the
 * demo's sandboxes, the benchmark's source API, a server in another process. The fake is made for
 * the server's own origin, which is known only once it listens (hence a function). Request URLs
 * are resolved against that origin, so paging links name it.
 *
 * @example
 * let fake: SalesforceFake;
 * const served = await serveOnLoopback((url) => {
 *   fake = createSalesforceFake({ instanceUrl: url });
 *   return fake.handle;
 * });
 */
export const serveOnLoopback = async (
  handlerFor: (url: string) => FakeRequestHandler,
  options: LoopbackServerOptions = {},
): Promise<LoopbackServer> => {
  const host = options.host ?? "127.0.0.1";
  let handle: FakeRequestHandler | undefined;
  let origin = "";
  const server = createServer(async (request, response) => {
    const controller = new AbortController();
    // The client hung up before we answered (a timeout on its side): release a hanging call.
    response.on("close", () => {
      if (!response.writableFinished) controller.abort();
    });
    try {
      const headers = new Headers();
      for (const [name, value] of Object.entries(request.headers)) {
        if (typeof value === "string") headers.set(name, value);
        else if (Array.isArray(value)) for (const v of value) headers.append(name, v);
      }
      const answer = await handle!({
        method: request.method ?? "GET",
        url: new URL(request.url ?? "/", origin),
        headers,
        body: await readBody(request),
        signal: controller.signal,
      });
      if (controller.signal.aborted) return;
      const body = answer.body === undefined ? undefined : JSON.stringify(answer.body);
      response.writeHead(answer.status, answer.headers);
      response.end(body);
    } catch (error) {
      response.writeHead(500, { "content-type": "application/json" });
      response.end(JSON.stringify({ status: "error", message: String(error), category: "INTERNAL_ERROR" }));
    }
  });
  // Node closes an idle keep-alive socket after 5 s. A client whose event loop is busy longer
  // than that between two pages (a large page being written, a loaded machine) can send its next
  // request on a socket the server is closing: "fetch failed". API gateways keep idle
  // connections about a minute; so do the fakes. Headers must be allowed to take longer still.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  origin = `http://${host}:${(server.address() as AddressInfo).port}`;
  handle = handlerFor(origin);
  return {
    url: origin,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
};
