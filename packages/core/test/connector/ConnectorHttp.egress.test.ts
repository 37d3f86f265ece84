import { makeConnectorHttp } from "@tandem/core";
import { HttpResponse, http } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

/*
 * Server-side request forgery through `ctx.http` (connectors), which webhook deliveries and the
 * LLM resolver also use. MSW answers every host, as an internal service would: each test fails
 * if the request reached it, whichever way the address was spelled or reached.
 */

const reached: Array<string> = [];
const server = setupServer(
  http.all("*", ({ request }) => {
    reached.push(request.url);
    return HttpResponse.text("INTERNAL-ONLY-BODY: db_password=hunter2", { status: 200 });
  }),
);
beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
afterEach(() => {
  server.resetHandlers();
  reached.length = 0;
});
afterAll(() => server.close());

const request = (url: string, method = "GET") =>
  makeConnectorHttp({ timeoutMs: 5_000 }).request({
    method,
    url,
    headers: { authorization: "Bearer stored-tenant-token" },
    ...(method === "POST" ? { body: { signed: true } } : {}),
  });

describe("ctx.http under the default egress policy", () => {
  it.each([
    ["cloud metadata", "http://169.254.169.254/latest/meta-data/iam/security-credentials/"],
    ["the database port on localhost", "http://localhost:5432/"],
    ["IPv6 loopback", "http://[::1]/admin"],
    ["a private network", "http://10.0.0.1/internal"],
    ["the unspecified address spelled 0", "http://0/"],
    ["loopback spelled in decimal", "http://2130706433/"],
    ["loopback spelled in hex", "http://0x7f000001/"],
    ["loopback spelled in octal and short form", "http://0177.1/"],
    ["IPv4-mapped IPv6 loopback", "http://[::ffff:127.0.0.1]/"],
    ["a localhost subdomain", "http://tandem.localhost:8080/"],
    ["AWS's IPv6 metadata (unique local)", "http://[fd00:ec2::254]/latest/meta-data/"],
  ])("refuses %s (%s) without sending anything", async (_, url) => {
    await expect(request(url)).rejects.toMatchObject({
      _tag: "EgressRefused",
      message: expect.stringContaining("egress policy"),
    });
    expect(reached).toEqual([]);
  });

  it("refuses a redirect to another host: a 307 must not re-POST the signed body to metadata", async () => {
    server.use(
      http.post("https://hooks.example.com/in", () =>
        HttpResponse.text("", { status: 307, headers: { location: "http://169.254.169.254/latest/meta-data/" } }),
      ),
      http.get("https://api.example.com/moved", () =>
        HttpResponse.text("", { status: 302, headers: { location: "https://elsewhere.example.net/v1" } }),
      ),
    );
    await expect(request("https://hooks.example.com/in", "POST")).rejects.toMatchObject({
      _tag: "EgressRefused",
      message: expect.stringContaining("redirected to another host"),
    });
    // Another public host is refused as well: nobody checked where it leads.
    await expect(request("https://api.example.com/moved")).rejects.toMatchObject({ _tag: "EgressRefused" });
    expect(reached).toEqual([]);
  });

  it("follows a redirect within the same origin, keeping method and body on a 308", async () => {
    const bodies: Array<string> = [];
    server.use(
      http.post("https://api.example.com/v1/old", () =>
        HttpResponse.text("", { status: 308, headers: { location: "/v2/new" } }),
      ),
      http.post("https://api.example.com/v2/new", async ({ request }) => {
        bodies.push(await request.text());
        return HttpResponse.json({ ok: true });
      }),
    );
    const response = await request("https://api.example.com/v1/old", "POST");
    expect(response).toMatchObject({ status: 200, body: { ok: true } });
    expect(bodies).toEqual(['{"signed":true}']);
  });

  it("reaches a public host as before", async () => {
    const response = await request("https://api.hubapi.com/crm/v3/objects/contacts");
    expect(response.status).toBe(200);
    expect(reached).toEqual(["https://api.hubapi.com/crm/v3/objects/contacts"]);
  });
});
