import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { createHubSpotFake, type HubSpotFake, type HubSpotFakeOptions } from "./HubSpotFake.ts";

export interface ServeHubSpotFakeOptions extends Omit<HubSpotFakeOptions, "baseUrl"> {
  /** Port to listen on; 0 picks a free one. Default 0. */
  readonly port?: number;
  /** Default 127.0.0.1 (loopback only: the fake has no real authentication). */
  readonly host?: string;
  /** Serve an existing fake instead of creating one. */
  readonly fake?: HubSpotFake;
}

/** A fake served over real HTTP. Point a connection's `baseUrl` at `url`. */
export interface ServedHubSpotFake {
  readonly url: string;
  readonly fake: HubSpotFake;
  readonly close: () => Promise<void>;
}

const readBody = async (request: IncomingMessage): Promise<string> => {
  const chunks: Array<Buffer> = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
};

/**
 * Serves the HubSpot fake over node:http on loopback, for the demo and the
 * benchmarks. Same state logic as the MSW handlers (the fake's `handle`).
 *
 * @example
 * const served = await serveHubSpotFake({ port: 0 });
 * served.fake.seedContacts(3_000);
 * // connection config: { baseUrl: served.url, accessToken: hubSpotFakeToken }
 */
export const serveHubSpotFake = async (options: ServeHubSpotFakeOptions = {}): Promise<ServedHubSpotFake> => {
  const host = options.host ?? "127.0.0.1";
  let fake = options.fake;
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
      const answer = await fake!.handle({
        method: request.method ?? "GET",
        url: new URL(request.url ?? "/", fake!.baseUrl),
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
  // connections about a minute; so does the fake. Headers must be allowed to take longer still.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host}:${port}`;
  fake ??= createHubSpotFake({ ...options, baseUrl: url });
  return {
    url,
    fake,
    close: async () => {
      fake!.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
};
