/**
 * Tandem's real server (`startServer`) as the webhook_ingest receiver: its route
 * `POST /webhooks/hubspot/:connectionId` verifies the v3 signature, stores the events in
 * `webhook_events` with their jobs in one transaction, and only then answers.
 *
 * The server runs as an API process without a worker (`TANDEM_WORKER=false`, the scale-out
 * layout in the README): what is measured is receiving, as for the baseline receivers, which
 * store events and process nothing. With its worker on, the same two cores would also run every
 * event's job (a read of the record from the source, itself a process on these cores), and the
 * figure would be of both.
 */

import { randomBytes } from "node:crypto";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { mkdtemp, rm } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Connections, Database, generateSecretKey, Tenants } from "@tandem/core";
import { configFromEnv, startServer } from "@tandem/server";
import { loopbackEgressAllow } from "@tandem/testkit";
import { Effect } from "effect";
import type { WebhookReceiver, WebhookReceiverInput } from "../webhooks/WebhookReceiver.ts";
import { benchHubSpotConfig } from "./TandemEngine.ts";

/**
 * Receipt-to-stored per request, from Node's own HTTP probes: the route commits the events
 * before it writes the response, so request start to response finish bounds it from above
 * (the same span the naive-store baseline measures). One sample per request: every event of
 * a delivery is stored by the same commit.
 */
const watchRequestSpans = () => {
  const started = new WeakMap<IncomingMessage, number>();
  const spans: Array<number> = [];
  const onStart = (message: unknown) => {
    const { request } = message as { request: IncomingMessage };
    if (request.method === "POST") started.set(request, performance.now());
  };
  const onFinish = (message: unknown) => {
    const { request, response } = message as { request: IncomingMessage; response: ServerResponse };
    const at = started.get(request);
    if (at !== undefined && response.statusCode === 200) spans.push(performance.now() - at);
  };
  subscribe("http.server.request.start", onStart);
  subscribe("http.server.response.finish", onFinish);
  return {
    spans,
    stop: () => {
      unsubscribe("http.server.request.start", onStart);
      unsubscribe("http.server.response.finish", onFinish);
    },
  };
};

export const startTandemServerReceiver = async (input: WebhookReceiverInput): Promise<WebhookReceiver> => {
  const dataDir = await mkdtemp(join(tmpdir(), "tandem-bench-server-"));
  const config = await Effect.runPromise(
    configFromEnv({
      DATABASE_URL: input.databaseUrl,
      TANDEM_SECRET_KEY: generateSecretKey(),
      TANDEM_DATA_DIR: dataDir,
      PORT: "0",
      HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
      TANDEM_WORKER: "false",
      // The connection's source is the bench's HubSpot on loopback.
      TANDEM_EGRESS_ALLOW: loopbackEgressAllow,
    }),
  );
  const server = await startServer(config);
  // A fresh tenant and connection per receiver: the harness restarts its event ids for every
  // load, and deduplication is per connection, so no load is shortcut by an earlier one's rows.
  const name = `bench-webhooks-${randomBytes(4).toString("hex")}`;
  const { connectionId } = await server.runtime.runPromise(
    Effect.gen(function* () {
      const tenant = yield* (yield* Tenants).create({ name });
      const connection = yield* (yield* Connections).create(tenant.id, {
        connector: "hubspot",
        name,
        config: benchHubSpotConfig({
          sourceUrl: input.sourceUrl,
          accessToken: input.accessToken,
          appSecret: input.appSecret,
        }),
      });
      return { connectionId: connection.id };
    }),
  );
  const probe = watchRequestSpans();
  const storedEvents = () =>
    server.runtime.runPromise(
      Effect.flatMap(Database, (db) =>
        db.query((k) =>
          k
            .selectFrom("webhook_events")
            .select((e) => e.fn.countAll<string>().as("n"))
            .where("connection_id", "=", connectionId)
            .executeTakeFirstOrThrow(),
        ),
      ),
    );
  let storedBeforeMark = 0;
  return {
    url: `${server.url}/webhooks/hubspot/${connectionId}`,
    receiptToStoredMs: async () => probe.spans,
    storedEvents: async () => Number((await storedEvents()).n) - storedBeforeMark,
    mark: async () => {
      probe.spans.length = 0;
      storedBeforeMark = Number((await storedEvents()).n);
    },
    close: async () => {
      probe.stop();
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
};
