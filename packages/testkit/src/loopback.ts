import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import type { LoopbackServer } from "@tandem/sandbox";
import { getResponse, type RequestHandler } from "msw";

const readBody = async (request: IncomingMessage): Promise<Buffer> => {
  const chunks: Array<Buffer> = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

/**
 * Serves MSW handlers (a plugin's own fake, say) over node:http on 127.0.0.1 (loopback only: the
 * fakes have no real authentication), for processes that cannot share the test's MSW
 * interception: a server in another process. The handlers are made for the server's own origin,
 * which is known only once it listens (hence a function). A request no handler answers gets a 404.
 * The sandbox's fakes need no MSW for this: `serveOnLoopback((url) => fake.handle)`.
 *
 * @example
 * const served = await serveHandlersOnLoopback((url) => taskboardHandlers(new TaskboardFake(url)));
 */
export const serveHandlersOnLoopback = async (
  handlersFor: (url: string) => ReadonlyArray<RequestHandler>,
  options: { readonly port?: number } = {},
): Promise<LoopbackServer> => {
  let handlers: Array<RequestHandler> = [];
  let origin = "";
  const server = createServer(async (incoming, outgoing) => {
    try {
      const headers = new Headers();
      for (const [name, value] of Object.entries(incoming.headers)) {
        if (typeof value === "string") headers.set(name, value);
        else if (Array.isArray(value)) for (const v of value) headers.append(name, v);
      }
      const method = incoming.method ?? "GET";
      const body = method === "GET" || method === "HEAD" ? undefined : await readBody(incoming);
      const request = new Request(new URL(incoming.url ?? "/", origin), { method, headers, body });
      const response = await getResponse(handlers, request);
      if (response === undefined) {
        outgoing.writeHead(404, { "content-type": "text/plain" }).end(`no handler for ${method} ${incoming.url}`);
        return;
      }
      outgoing.writeHead(response.status, Object.fromEntries(response.headers));
      outgoing.end(Buffer.from(await response.arrayBuffer()));
    } catch (error) {
      outgoing.writeHead(500, { "content-type": "text/plain" }).end(String(error));
    }
  });
  // As the HubSpot fake's loopback server: API gateways keep idle connections about a minute.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  handlers = [...handlersFor(origin)];
  return {
    url: origin,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
};
