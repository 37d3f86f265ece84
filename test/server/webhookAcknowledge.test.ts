import { fileURLToPath } from "node:url";
import { acmeWebhookRequest } from "@tandem/testkit";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

const plugin = (file: string) => fileURLToPath(new URL(`../support/connectors/${file}`, import.meta.url));
const secret = "whsec-acme";

/**
 * Connectors whose vendor expects its own acknowledgement (`ConnectorWebhooks.acknowledge`),
 * loaded as plugins into a real server and posted to over HTTP.
 */
describe("inbound webhook acknowledgements", () => {
  let t: TestServer;
  let key: string;
  const connections: Record<string, string> = {};

  beforeAll(async () => {
    t = await startTestServer("postgres", {
      TANDEM_CONNECTORS: `${plugin("acmeAcknowledging.ts")},${plugin("acmeAcknowledgingBroken.ts")}`,
    });
    const admin = t.client(t.adminKey);
    const tenant = await admin.tenants.create.mutate({ name: "acknowledging" });
    key = (await admin.apiKeys.create.mutate({ tenantId: tenant.id, name: "k" })).key;
    for (const connector of ["acme-acknowledging", "acme-acknowledging-broken"]) {
      const connection = await t.client(key).connections.create.mutate({
        connector,
        name: connector,
        config: { baseUrl: "https://acme.test", token: "t", webhookSecret: secret },
      });
      connections[connector] = connection.id;
    }
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  const post = (connector: string, eventIds: ReadonlyArray<string>, signWith = secret) => {
    const url = `${t.server.url}/webhooks/${connector}/${connections[connector]}`;
    const now = new Date();
    const request = acmeWebhookRequest({
      secret: signWith,
      now,
      url,
      events: eventIds.map((id, i) => ({
        id,
        type: "contact.updated" as const,
        objectId: `c00000${i + 1}`,
        occurredAt: now.toISOString(),
      })),
    });
    return fetch(url, { method: "POST", headers: request.headers, body: request.rawBody });
  };

  it("answers stored events with the connector's acknowledgement, a repeat delivery too", async () => {
    const first = await post("acme-acknowledging", ["a1", "a2"]);
    expect(first.status).toBe(200);
    expect(first.headers.get("content-type")).toBe("text/xml; charset=utf-8");
    expect(await first.text()).toBe('<Ack accepted="2" duplicates="0">true</Ack>');
    const again = await post("acme-acknowledging", ["a1", "a2"]);
    expect(await again.text()).toBe('<Ack accepted="0" duplicates="2">true</Ack>');
    // The events were stored, with their job, before the answer; the repeat queued nothing.
    const jobs = await t.client(key).jobs.list.query({ connectionId: connections["acme-acknowledging"]! });
    expect(jobs.map((job) => job.kind)).toEqual(["webhook.event"]);
  });

  it("refuses a bad signature with the engine's own answer, not an acknowledgement", async () => {
    const forged = await post("acme-acknowledging", ["f1"], "guess");
    expect(forged.status).toBe(401);
    expect(await forged.json()).toEqual({ error: "webhook signature did not verify" });
  });

  it("answers the default receipt when the connector's acknowledgement throws, and logs why", async () => {
    const lines: Array<string> = [];
    const log = vi.spyOn(console, "log").mockImplementation((line: unknown) => {
      lines.push(String(line));
    });
    try {
      const response = await post("acme-acknowledging-broken", ["b1"]);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ accepted: 1, duplicates: 0, ignored: 0 });
    } finally {
      log.mockRestore();
    }
    expect(
      lines.some((line) => line.includes("acme-acknowledging-broken failed (acknowledgement template failed)")),
    ).toBe(true);
  });
});
