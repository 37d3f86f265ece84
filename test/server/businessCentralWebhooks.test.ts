import erp, { BusinessCentralConfig, subscribeBusinessCentral } from "@tandem/connector-erp";
import { makeStandaloneContext } from "@tandem/core";
import {
  type BusinessCentralFake,
  businessCentralFakeApp,
  businessCentralFakeIds,
  createBusinessCentralFake,
  type LoopbackServer,
  makeLoopbackEgressPolicy,
  serveOnLoopback,
} from "@tandem/testkit";
import { Schema } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

const clientState = "demo-client-state-of-some-length";

/**
 * Business Central webhooks end to end: the fake on loopback, a real server. Subscribing makes
 * the fake call the server's endpoint with a validationToken (the handshake); its notifications
 * then go to the same endpoint and sync the items they name.
 */
describe("Business Central webhooks through the server", () => {
  let t: TestServer;
  let fake!: BusinessCentralFake;
  let sandbox: LoopbackServer;
  let key: string;
  let connectionId: string;
  let config: Record<string, unknown>;

  beforeAll(async () => {
    sandbox = await serveOnLoopback((url) => {
      fake = createBusinessCentralFake({ baseUrl: url, authorityUrl: url });
      return fake.handle;
    });
    fake.seedItems(3);
    t = await startTestServer("postgres");
    const admin = t.client(t.adminKey);
    const tenant = await admin.tenants.create.mutate({ name: "bc" });
    key = (await admin.apiKeys.create.mutate({ tenantId: tenant.id, name: "k" })).key;
    config = {
      baseUrl: sandbox.url,
      authorityUrl: sandbox.url,
      ...businessCentralFakeIds,
      clientId: businessCentralFakeApp.clientId,
      clientSecret: businessCentralFakeApp.clientSecret,
      webhookClientState: clientState,
    };
    connectionId = (await t.client(key).connections.create.mutate({ connector: "erp", name: "bc", config })).id;
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    await sandbox?.close();
  });

  it("passes the subscription handshake, and a notification syncs the item it names", async () => {
    const ctx = makeStandaloneContext(erp, Schema.decodeUnknownSync(BusinessCentralConfig)(config), {
      http: { timeoutMs: 5_000, egress: makeLoopbackEgressPolicy() },
      log: { debug: () => {}, info: () => {}, warn: () => {} },
    });
    const notificationUrl = `${t.server.url}/webhooks/erp/${connectionId}`;
    // The fake calls notificationUrl?validationToken=... and creates the subscription only if the token comes back.
    const subscription = await subscribeBusinessCentral(ctx, { entity: "items", notificationUrl });
    expect(fake.subscriptions().map((s) => s.subscriptionId)).toEqual([subscription.subscriptionId]);
    expect(subscription.notificationUrl).toBe(notificationUrl);

    const item = fake.records("items")[0]!;
    fake.store.update("items", item.id, { displayName: "Bicycle, notified" });
    const [delivery] = await fake.deliverNotifications();
    expect(delivery?.status).toBe(200);
    const client = t.client(key);
    await expect
      .poll(async () => (await client.records.get.query({ connectionId, entity: "items", externalId: item.id })).data, {
        timeout: 30_000,
        interval: 200,
      })
      .toMatchObject({ displayName: "Bicycle, notified" });
  });

  it("refuses a notification whose clientState is not the connection's", async () => {
    const response = await fetch(`${t.server.url}/webhooks/erp/${connectionId}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        value: [
          {
            subscriptionId: "x",
            clientState: "guess",
            expirationDateTime: new Date(Date.now() + 86_400_000).toISOString(),
            resource: `api/v2.0/companies(${businessCentralFakeIds.companyId})/items(${fake.records("items")[1]!.id})`,
            changeType: "updated",
            lastModifiedDateTime: new Date().toISOString(),
          },
        ],
      }),
    });
    expect(response.status).toBe(401);
  });
});
