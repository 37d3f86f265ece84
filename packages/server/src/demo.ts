import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ApiKeys, Connections, Scheduler, Syncs, Tenants } from "@tandem/core";
import { createHubSpotWebhookEmitter, hubSpotFakeToken, serveHubSpotFake } from "@tandem/testkit";
import { Effect } from "effect";
import type { RunningServer } from "./Server.ts";

const DEMO_WEBHOOK_SECRET = "demo-hubspot-client-secret";

interface DemoState {
  readonly tenantId: string;
  readonly apiKey: string;
  readonly connectionId: string;
}

/**
 * The built-in sandbox: a HubSpot fake on loopback, seeded with a few thousand
 * contacts that keep changing, and a demo tenant whose connection points at it.
 * Syncs start at once (a full sync, then a delta every minute, and webhooks for
 * every change), so a newcomer can watch Tandem work without any credentials.
 * The demo tenant's key is kept in `<data dir>/demo.json` (mode 600).
 */
export const startDemo = async (server: RunningServer, dataDir: string) => {
  const sandbox = await serveHubSpotFake({ port: 0 });
  sandbox.fake.seedContacts(3_000);
  sandbox.fake.seedCompanies(300);
  // A few edits, creations and archives every few seconds, like a sales team at work.
  const churn = setInterval(() => {
    sandbox.fake.churn("contacts", { updates: 5, creates: 1, archives: 1 });
    sandbox.fake.churn("companies", { updates: 1, creates: 0, archives: 0 });
  }, 5_000);

  const statePath = join(dataDir, "demo.json");
  const previous: DemoState | undefined = existsSync(statePath)
    ? JSON.parse(readFileSync(statePath, "utf8"))
    : undefined;
  const config = {
    baseUrl: sandbox.url,
    accessToken: hubSpotFakeToken,
    webhooks: { clientSecret: DEMO_WEBHOOK_SECRET },
  };

  const state = await server.runtime.runPromise(
    Effect.gen(function* () {
      const syncs = yield* Syncs;
      if (previous !== undefined) {
        // The sandbox listens on a new port at every start: point the connection at it.
        yield* (yield* Connections).update(previous.tenantId, previous.connectionId, { config });
        return previous;
      }
      const tenant = yield* (yield* Tenants).create({ name: "Demo" });
      const key = yield* (yield* ApiKeys).create({ tenantId: tenant.id, name: "demo" });
      const connection = yield* syncs.createConnection(tenant.id, {
        connector: "hubspot",
        name: "hubspot-sandbox",
        config,
      });
      return { tenantId: tenant.id, apiKey: key.key, connectionId: connection.id } satisfies DemoState;
    }),
  );
  if (previous === undefined) writeFileSync(statePath, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });

  await server.runtime.runPromise(
    Effect.gen(function* () {
      const scheduler = yield* Scheduler;
      const syncs = yield* Syncs;
      for (const entity of ["contacts", "companies"]) {
        // Deltas every minute in the demo (the default is 15), so schedules show up quickly.
        yield* scheduler.ensureSyncSchedules({
          connectionId: state.connectionId,
          entity,
          tenantId: state.tenantId,
          deltaCron: "* * * * *",
        });
        yield* syncs
          .trigger(state.tenantId, {
            connectionId: state.connectionId,
            entity,
            mode: previous === undefined ? "full" : "delta",
          })
          .pipe(Effect.ignore);
      }
    }),
  );

  const emitter = createHubSpotWebhookEmitter({
    store: sandbox.fake.store,
    targetUrl: `${server.url}/webhooks/hubspot/${state.connectionId}`,
    clientSecret: DEMO_WEBHOOK_SECRET,
    signatureVersions: ["v3"],
  });
  const webhooks = setInterval(() => void emitter.flush(), 2_000);

  return {
    state,
    sandboxUrl: sandbox.url,
    close: async () => {
      clearInterval(churn);
      clearInterval(webhooks);
      emitter.close();
      await sandbox.close();
    },
  };
};
