import type { IncomingMessage, ServerResponse } from "node:http";
import { DatabaseRejectedValue, InboundWebhooks } from "@tandem/core";
import { Cause, Chunk, Effect, Exit, Option } from "effect";
import type { AccessLog } from "./accessLog.ts";
import type { AppRuntime } from "./runtime.ts";

/** The route's pattern, as the access log and metrics label it. */
export const webhookRoutePattern = "/webhooks/:connector/:connectionId";

const path = /^\/webhooks\/([^/?#]+)\/([0-9a-fA-F-]{36})(?:[?#]|$)/;

const statusByTag: Record<string, 400 | 401 | 404> = {
  ResourceNotFound: 404,
  WebhookRejected: 401,
  MalformedWebhook: 400,
};

const send = (response: ServerResponse, status: number, body: string, contentType: string) => {
  response.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
  response.end(body);
};

const sendJson = (response: ServerResponse, status: number, value: unknown) =>
  send(response, status, JSON.stringify(value), "application/json");

/** The body as text, or undefined when it grows past `maxBytes` (the request is then left unread). */
const readBody = (request: IncomingMessage, maxBytes: number): Promise<string | undefined> =>
  new Promise((resolve, reject) => {
    const declared = Number(request.headers["content-length"] ?? 0);
    if (declared > maxBytes) return resolve(undefined);
    const chunks: Array<Buffer> = [];
    let size = 0;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        request.removeAllListeners("data");
        request.pause();
        resolve(undefined);
      } else chunks.push(chunk);
    });
    request.on("end", () => resolve(Buffer.concat(chunks, size).toString("utf8")));
    request.on("error", reject);
  });

const headersOf = (request: IncomingMessage): Headers => {
  const headers = new Headers();
  const raw = request.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  return headers;
};

/**
 * Inbound vendor webhooks, served at the node:http level ahead of the Hono app: vendors post
 * in bursts, and on this route Hono's web `Request`, its headers and body stream were about a
 * tenth of the process's CPU at 5,000 events/s (bench/README.md). The events are stored (with
 * their jobs) before the 2xx, so an acknowledged event survives a crash; a vendor retrying
 * after a 5xx is deduplicated by event id. GET (and a POST the connector recognizes) may be a
 * subscription handshake. Answers whether the request was this route's.
 */
export const makeWebhookRoute =
  (runtime: AppRuntime, options: { readonly maxBytes: number; readonly accessLog: AccessLog }) =>
  (request: IncomingMessage, response: ServerResponse): boolean => {
    const method = request.method ?? "GET";
    const target = request.url ?? "";
    if ((method !== "POST" && method !== "GET") || !target.startsWith("/webhooks/")) return false;
    const started = performance.now();
    const finish = (status: number) =>
      options.accessLog({ method, route: webhookRoutePattern, path: target.split("?")[0]!, status, started });
    const match = path.exec(target);
    if (match === null) {
      sendJson(response, 404, { error: "unknown webhook endpoint" });
      finish(404);
      return true;
    }
    const answer = (status: number, value: unknown) => {
      sendJson(response, status, value);
      finish(status);
    };
    const connectionId = match[2]!;
    let connector: string;
    try {
      connector = decodeURIComponent(match[1]!);
    } catch {
      answer(404, { error: "unknown webhook endpoint" });
      return true;
    }
    void (async () => {
      const rawBody = await readBody(request, options.maxBytes);
      if (rawBody === undefined) {
        // Close the connection: the rest of an oversized body is not read.
        response.setHeader("connection", "close");
        return answer(413, { error: `payload larger than ${options.maxBytes} bytes` });
      }
      let url: string;
      try {
        // The URL as the vendor called it (signatures cover it): the Host header names our origin.
        const scheme = (request.socket as { encrypted?: boolean }).encrypted ? "https" : "http";
        url = new URL(`${scheme}://${request.headers.host ?? "localhost"}${target}`).href;
      } catch {
        return answer(400, { error: "invalid request URL" });
      }
      const exit = await runtime.runPromiseExit(
        // Its span is InboundWebhooks.receive.
        Effect.flatMap(InboundWebhooks, (inbound) =>
          inbound.receive(connector, connectionId, {
            method,
            url,
            headers: headersOf(request),
            rawBody,
          }),
        ),
      );
      if (Exit.isSuccess(exit)) {
        if (exit.value._tag === "Handshake") {
          send(response, exit.value.status, exit.value.body, "text/plain; charset=utf-8");
          return finish(exit.value.status);
        }
        const { _tag, answer: acknowledgement, ...receipt } = exit.value;
        if (acknowledgement !== undefined) {
          send(response, acknowledgement.status, acknowledgement.body, acknowledgement.contentType);
          return finish(acknowledgement.status);
        }
        return answer(200, receipt);
      }
      const failure = Cause.failureOption(exit.cause);
      if (Option.isSome(failure)) {
        const error = failure.value as { readonly _tag: string; readonly message: string };
        return answer(statusByTag[error._tag] ?? 400, { error: error.message });
      }
      const refused = Chunk.findFirst(Cause.defects(exit.cause), (d) => d instanceof DatabaseRejectedValue);
      if (Option.isSome(refused)) {
        // A value the engine's checks let through and the database refused: a retry would meet
        // the same refusal, so the vendor is told 400 (it stops), not 500 (it retries for days).
        runtime.runFork(Effect.logWarning("webhook delivery refused by the database", exit.cause));
        return answer(400, { error: "an event has a value that cannot be stored" });
      }
      runtime.runFork(Effect.logError("webhook intake failed", exit.cause));
      answer(500, { error: "internal error; retry later" });
    })().catch((error: unknown) => {
      // The request stream failed (the client went away): nothing was stored, nothing to answer.
      runtime.runFork(Effect.logWarning("webhook request failed", String(error)));
      if (!response.headersSent) answer(400, { error: "request could not be read" });
    });
    return true;
  };
