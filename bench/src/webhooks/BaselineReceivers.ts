import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { wallClockMs } from "../measure/Clock.ts";
import type { WebhookReceiver, WebhookReceiverInput } from "./WebhookReceiver.ts";

const path = "/webhooks/hubspot/bench";
const maxTimestampAgeMs = 5 * 60_000;

const readBody = async (request: IncomingMessage): Promise<string> => {
  const chunks: Array<Buffer> = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
};

/** HubSpot signature v3, checked the way any receiver must (constant-time, fresh timestamp). */
const verifiedV3 = (request: IncomingMessage, body: string, appSecret: string): boolean => {
  const signature = request.headers["x-hubspot-signature-v3"];
  const timestamp = request.headers["x-hubspot-request-timestamp"];
  if (typeof signature !== "string" || typeof timestamp !== "string") return false;
  if (Math.abs(Date.now() - Number(timestamp)) > maxTimestampAgeMs) return false;
  const uri = `http://${request.headers.host}${request.url}`;
  const expected = createHmac("sha256", appSecret).update(`${request.method}${uri}${body}${timestamp}`).digest();
  const given = Buffer.from(signature, "base64");
  return given.length === expected.length && timingSafeEqual(given, expected);
};

const listen = async (server: Server): Promise<string> => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
};

const closeServer = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

/**
 * ack-only: verify the signature, parse, answer 200, store nothing. The ceiling of this machine
 * for signed webhook traffic with this load generator: no receiver that stores can beat it.
 */
export const startAckOnlyReceiver = async (input: WebhookReceiverInput): Promise<WebhookReceiver> => {
  let events = 0;
  const server = createServer(async (request, response) => {
    const body = await readBody(request);
    if (!verifiedV3(request, body, input.appSecret)) {
      response.writeHead(401).end();
      return;
    }
    events += (JSON.parse(body) as Array<unknown>).length;
    response.writeHead(200).end();
  });
  return {
    url: await listen(server),
    receiptToStoredMs: async () => [],
    storedEvents: async () => events,
    mark: async () => {
      events = 0;
    },
    close: () => closeServer(server),
  };
};

/**
 * naive-store: verify, then insert each event (deduplicated by event id) one statement at a
 * time before answering: durable on ack, with a round trip per event on the request path.
 */
export const startNaiveStoreReceiver = async (input: WebhookReceiverInput): Promise<WebhookReceiver> => {
  const pool = new pg.Pool({ connectionString: input.databaseUrl, max: 10 });
  await pool.query(`
    drop table if exists bench_webhook_events;
    create table bench_webhook_events (
      event_id bigint primary key,
      object_id bigint not null,
      subscription_type text not null,
      payload jsonb not null,
      received_at timestamptz not null default now()
    )`);
  const latencies: Array<number> = [];
  const count = async () => Number((await pool.query("select count(*) as n from bench_webhook_events")).rows[0].n);
  let storedBeforeMark = 0;
  const server = createServer(async (request, response) => {
    const receivedAt = wallClockMs();
    const body = await readBody(request);
    if (!verifiedV3(request, body, input.appSecret)) {
      response.writeHead(401).end();
      return;
    }
    try {
      const events = JSON.parse(body) as Array<{ eventId: number; objectId: number; subscriptionType: string }>;
      for (const event of events) {
        await pool.query(
          `insert into bench_webhook_events (event_id, object_id, subscription_type, payload)
           values ($1, $2, $3, $4) on conflict (event_id) do nothing`,
          [event.eventId, event.objectId, event.subscriptionType, JSON.stringify(event)],
        );
        latencies.push(wallClockMs() - receivedAt);
      }
      response.writeHead(200).end();
    } catch {
      response.writeHead(500).end();
    }
  });
  return {
    url: await listen(server),
    receiptToStoredMs: async () => latencies,
    storedEvents: async () => (await count()) - storedBeforeMark,
    mark: async () => {
      latencies.length = 0;
      storedBeforeMark = await count();
    },
    close: async () => {
      await closeServer(server);
      await pool.end();
    },
  };
};
