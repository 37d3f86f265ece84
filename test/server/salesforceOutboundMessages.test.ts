import {
  createSalesforceFake,
  type LoopbackServer,
  outboundMessageRequest,
  outboundNotificationId,
  type SalesforceFake,
  type StoredSalesforceRecord,
  salesforceFakeOAuthApp,
  salesforceFakeOrgId,
  salesforceHandlers,
  serveHandlersOnLoopback,
} from "@tandem/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

/**
 * Salesforce Outbound Messages end to end: the Salesforce fake on loopback, a real server, and
 * SOAP notifications posted to its webhook route, which must answer the SOAP Ack Salesforce
 * waits for (or it redelivers for 24 hours) and sync the record named.
 */
describe("Salesforce Outbound Messages through the server", () => {
  let t: TestServer;
  let fake!: SalesforceFake;
  let sandbox: LoopbackServer;
  let key: string;
  let connectionId: string;

  beforeAll(async () => {
    // Through the testkit's MSW handlers served on loopback (the Business Central test serves its
    // fake's handle directly, with the sandbox's serveOnLoopback).
    sandbox = await serveHandlersOnLoopback((url) => {
      fake = createSalesforceFake({ instanceUrl: url });
      return salesforceHandlers(fake);
    });
    fake.seedContacts(5);
    t = await startTestServer("postgres");
    const admin = t.client(t.adminKey);
    const tenant = await admin.tenants.create.mutate({ name: "sf" });
    key = (await admin.apiKeys.create.mutate({ tenantId: tenant.id, name: "k" })).key;
    const connection = await t.client(key).connections.create.mutate({
      connector: "salesforce",
      name: "org",
      config: {
        instanceUrl: sandbox.url,
        clientId: salesforceFakeOAuthApp.clientId,
        clientSecret: salesforceFakeOAuthApp.clientSecret,
        refreshToken: salesforceFakeOAuthApp.refreshToken,
        outboundMessageOrgId: salesforceFakeOrgId,
      },
    });
    connectionId = connection.id;
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    await sandbox?.close();
  });

  const post = (organizationId: string, records: ReadonlyArray<StoredSalesforceRecord>) => {
    const url = `${t.server.url}/webhooks/salesforce/${connectionId}`;
    const request = outboundMessageRequest(url, {
      organizationId,
      instanceUrl: sandbox.url,
      notifications: records.map((r) => ({ id: outboundNotificationId(), record: r })),
    });
    return fetch(url, { method: "POST", headers: request.headers, body: request.rawBody });
  };

  it("acknowledges a notification with a SOAP Ack and syncs the contact it names", async () => {
    const client = t.client(key);
    const contact = fake.live("Contact")[0]!;
    fake.store.update("Contact", contact.Id, { LastName: "Outbound" });
    const response = await post(salesforceFakeOrgId, [fake.store.get("Contact", contact.Id)!]);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/xml; charset=utf-8");
    expect(await response.text()).toContain("<Ack>true</Ack>");
    await expect
      .poll(
        async () => (await client.records.get.query({ connectionId, entity: "contacts", externalId: contact.Id })).data,
        { timeout: 30_000, interval: 200 },
      )
      .toMatchObject({ lastName: "Outbound" });
  });

  it("refuses a message from another org without acknowledging it", async () => {
    const response = await post("00D000000000001AAA", [fake.live("Contact")[1]!]);
    expect(response.status).toBe(401);
    expect(await response.text()).not.toContain("<Ack>");
  });
});
