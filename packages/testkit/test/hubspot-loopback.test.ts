import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hubSpotFakeToken, type ServedHubSpotFake, serveHubSpotFake } from "../src/index.ts";

// No MSW in this file: these requests cross a real loopback socket.
let served: ServedHubSpotFake;
beforeAll(async () => {
  served = await serveHubSpotFake({ port: 0 });
  served.fake.seedContacts(120);
});
afterAll(() => served.close());

const call = (method: string, path: string, body?: unknown, timeoutMs = 5_000) =>
  new Promise<{ status: number; headers: Record<string, unknown>; body: any }>((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const outgoing = request(
      `${served.url}${path}`,
      {
        method,
        timeout: timeoutMs,
        headers: {
          authorization: `Bearer ${hubSpotFakeToken}`,
          ...(payload ? { "content-type": "application/json" } : {}),
        },
      },
      (response) => {
        const chunks: Array<Buffer> = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: text === "" ? undefined : JSON.parse(text),
          });
        });
      },
    );
    outgoing.on("timeout", () => outgoing.destroy(new Error("timed out")));
    outgoing.on("error", reject);
    outgoing.end(payload);
  });

describe("serveHubSpotFake", () => {
  it("answers list, search, writes and 401 over real HTTP on loopback", async () => {
    expect(served.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const page = await call("GET", "/crm/v3/objects/contacts?limit=100");
    expect(page.status).toBe(200);
    expect(page.body.results).toHaveLength(100);
    expect(page.headers["x-hubspot-ratelimit-max"]).toBeDefined();
    const rest = await call("GET", `/crm/v3/objects/contacts?limit=100&after=${page.body.paging.next.after}`);
    expect(rest.body.results).toHaveLength(20);
    const found = await call("POST", "/crm/v3/objects/contacts/search", { limit: 200 });
    expect(found.body.total).toBe(120);
    const created = await call("POST", "/crm/v3/objects/contacts", { properties: { email: "loop@example.com" } });
    expect(created.status).toBe(201);
    expect((await call("DELETE", `/crm/v3/objects/contacts/${created.body.id}`)).status).toBe(204);
    expect(served.fake.archived("contacts").map((o) => o.id)).toEqual([created.body.id]);
  });

  it("a hang ends when the client gives up", async () => {
    served.fake.failNext({ kind: "hang" });
    await expect(call("GET", "/crm/v3/objects/contacts", undefined, 100)).rejects.toThrow(/timed out/);
    expect((await call("GET", "/crm/v3/objects/contacts?limit=1")).status).toBe(200);
  });
});
