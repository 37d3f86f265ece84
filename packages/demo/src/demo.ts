import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ApiKeys, Connections, createConnection, Scheduler, SyncTriggers, Tenants } from "@tandem/core";
import {
  type BusinessCentralFake,
  businessCentralFakeApp,
  businessCentralFakeIds,
  createBusinessCentralFake,
  createHubSpotWebhookEmitter,
  createSalesforceFake,
  hubSpotFakeToken,
  type SalesforceFake,
  salesforceFakeOAuthApp,
  serveHubSpotFake,
  serveOnLoopback,
} from "@tandem/sandbox";
import type { RunningServer } from "@tandem/server";
import { Effect } from "effect";

const DEMO_WEBHOOK_SECRET = "demo-hubspot-client-secret";

interface DemoState {
  readonly tenantId: string;
  readonly apiKey: string;
  /** The HubSpot connection (the first sandbox; demo.json files from before the others have only it). */
  readonly connectionId: string;
  readonly salesforceConnectionId?: string;
  readonly erpConnectionId?: string;
}

/** A sandbox's connection: its connector, its entities and the config pointing at the sandbox. */
interface SandboxConnection {
  readonly key: "connectionId" | "salesforceConnectionId" | "erpConnectionId";
  readonly connector: string;
  readonly name: string;
  readonly entities: ReadonlyArray<string>;
  readonly config: Record<string, unknown>;
}

/** A random element of a non-empty list, or undefined. */
const pick = <A>(list: ReadonlyArray<A>): A | undefined => list[Math.floor(Math.random() * list.length)];

/** Salesforce's sandbox on loopback: a few hundred contacts and accounts. */
const startSalesforceSandbox = async () => {
  let fake!: SalesforceFake;
  const served = await serveOnLoopback((url) => {
    fake = createSalesforceFake({ instanceUrl: url });
    return fake.handle;
  });
  fake.seedContacts(600);
  fake.seedAccounts(60);
  return {
    url: served.url,
    close: served.close,
    // A few edits and a deletion now and then, in the org's recycle bin the next delta reads.
    churn: () => {
      for (let i = 0; i < 3; i++) {
        const contact = pick(fake.live("Contact"));
        if (contact !== undefined)
          fake.store.update("Contact", contact.Id, { Phone: `+1 555 01${i}${Date.now() % 100}` });
      }
      const gone = Math.random() < 0.2 ? pick(fake.live("Contact")) : undefined;
      if (gone !== undefined) fake.store.delete("Contact", gone.Id);
    },
    config: {
      instanceUrl: served.url,
      clientId: salesforceFakeOAuthApp.clientId,
      clientSecret: salesforceFakeOAuthApp.clientSecret,
      refreshToken: salesforceFakeOAuthApp.refreshToken,
    },
  };
};

/** Business Central's sandbox on loopback (API and token endpoint on one origin): items and customers. */
const startBusinessCentralSandbox = async () => {
  let fake!: BusinessCentralFake;
  const served = await serveOnLoopback((url) => {
    fake = createBusinessCentralFake({ baseUrl: url, authorityUrl: url });
    return fake.handle;
  });
  fake.seedItems(400);
  fake.seedCustomers(80);
  return {
    url: served.url,
    close: served.close,
    // Prices change and stock moves, as in a warehouse.
    churn: () => {
      const item = pick(fake.records("items"));
      if (item !== undefined)
        fake.store.update("items", item.id, { unitPrice: Math.round(Math.random() * 10_000) / 100 });
    },
    config: {
      baseUrl: served.url,
      authorityUrl: served.url,
      ...businessCentralFakeIds,
      clientId: businessCentralFakeApp.clientId,
      clientSecret: businessCentralFakeApp.clientSecret,
    },
  };
};

/**
 * The built-in sandboxes: a HubSpot fake on loopback, seeded with a few thousand contacts that
 * keep changing, and Salesforce and Business Central fakes with a few hundred records each; a
 * demo tenant with one connection to each. Syncs start at once (a full sync, then a delta every
 * minute, and HubSpot webhooks for every change), so a newcomer can watch Tandem work without any
 * credentials. The demo tenant's key is kept in `<data dir>/demo.json` (mode 600).
 */
export const startDemo = async (server: RunningServer, dataDir: string) => {
  const sandbox = await serveHubSpotFake({ port: 0 });
  sandbox.fake.seedContacts(3_000);
  sandbox.fake.seedCompanies(300);
  const salesforce = await startSalesforceSandbox();
  const erp = await startBusinessCentralSandbox();
  // A few edits, creations and archives every few seconds, like a sales team at work.
  const churn = setInterval(() => {
    sandbox.fake.churn("contacts", { updates: 5, creates: 1, archives: 1 });
    sandbox.fake.churn("companies", { updates: 1, creates: 0, archives: 0 });
    salesforce.churn();
    erp.churn();
  }, 5_000);

  const statePath = join(dataDir, "demo.json");
  const previous: DemoState | undefined = existsSync(statePath)
    ? JSON.parse(readFileSync(statePath, "utf8"))
    : undefined;
  const sandboxes: ReadonlyArray<SandboxConnection> = [
    {
      key: "connectionId",
      connector: "hubspot",
      name: "hubspot-sandbox",
      entities: ["contacts", "companies"],
      config: { baseUrl: sandbox.url, accessToken: hubSpotFakeToken, webhooks: { clientSecret: DEMO_WEBHOOK_SECRET } },
    },
    {
      key: "salesforceConnectionId",
      connector: "salesforce",
      name: "salesforce-sandbox",
      entities: ["contacts", "accounts"],
      config: salesforce.config,
    },
    {
      key: "erpConnectionId",
      connector: "erp",
      name: "erp-sandbox",
      entities: ["items", "customers"],
      config: erp.config,
    },
  ];

  // Every sandbox listens on a new port at every start: existing connections are pointed at it,
  // missing ones (a first start, or a demo.json from before a sandbox existed) are created.
  const { state, created } = await server.runtime.runPromise(
    Effect.gen(function* () {
      const connections = yield* Connections;
      let base: { tenantId: string; apiKey: string } | undefined = previous;
      if (base === undefined) {
        const tenant = yield* (yield* Tenants).create({ name: "Demo" });
        const key = yield* (yield* ApiKeys).create({ tenantId: tenant.id, name: "demo" });
        base = { tenantId: tenant.id, apiKey: key.key };
      }
      const ids: Partial<Record<SandboxConnection["key"], string>> = {};
      const created = new Set<string>();
      for (const s of sandboxes) {
        const existing = previous?.[s.key];
        if (existing !== undefined) {
          yield* connections.update(base.tenantId, existing, { config: s.config });
          ids[s.key] = existing;
        } else {
          const connection = yield* createConnection(base.tenantId, {
            connector: s.connector,
            name: s.name,
            config: s.config,
          });
          ids[s.key] = connection.id;
          created.add(connection.id);
        }
      }
      return { state: { ...base, ...ids, connectionId: ids.connectionId! } satisfies DemoState, created };
    }),
  );
  writeFileSync(statePath, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });

  await server.runtime.runPromise(
    Effect.gen(function* () {
      const scheduler = yield* Scheduler;
      const triggers = yield* SyncTriggers;
      for (const s of sandboxes) {
        const connectionId = state[s.key]!;
        for (const entity of s.entities) {
          // Deltas every minute in the demo (the default is 15), so schedules show up quickly.
          yield* scheduler.ensureSyncSchedules({
            connectionId,
            entity,
            tenantId: state.tenantId,
            deltaCron: "* * * * *",
          });
          yield* triggers
            .trigger(state.tenantId, { connectionId, entity, mode: created.has(connectionId) ? "full" : "delta" })
            .pipe(Effect.ignore);
        }
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
    salesforceUrl: salesforce.url,
    erpUrl: erp.url,
    close: async () => {
      clearInterval(churn);
      clearInterval(webhooks);
      emitter.close();
      await Promise.all([sandbox.close(), salesforce.close(), erp.close()]);
    },
  };
};
