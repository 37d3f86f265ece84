import { Redacted, Schema } from "effect";
import { HttpResponse, http } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AuthExpired, defineConnector } from "../src/index.ts";
import { makeStandaloneContext } from "../src/runtime.ts";

/*
 * A connector's `auth` hook as ctx.http applies it: the bearer token on every request, one new
 * grant and one more try after a 401, one token request for concurrent callers, and a refusal
 * that says the credentials must be renewed. The vendor is an MSW handler.
 */

const api = "https://api.auth-test.example";
let valid = new Set<string>();
let issued = 0;
let refuse = false;
let rotatedFrom: Array<string | undefined> = [];

const server = setupServer(
  http.post(`${api}/token`, async ({ request }) => {
    const form = new URLSearchParams(await request.text());
    rotatedFrom.push(form.get("refresh_token") ?? undefined);
    // The token endpoint is answered slowly enough that concurrent callers overlap.
    await new Promise((r) => setTimeout(r, 20));
    if (refuse) return HttpResponse.json({ error: "invalid_grant" }, { status: 400 });
    const token = `token-${++issued}`;
    valid.add(token);
    return HttpResponse.json({ access_token: token, expires_in: 3600, refresh_token: `refresh-${issued}` });
  }),
  http.get(`${api}/things`, ({ request }) => {
    const token = request.headers.get("authorization")?.replace(/^Bearer /, "") ?? "";
    return valid.has(token) ? HttpResponse.json({ token }) : new HttpResponse(null, { status: 401 });
  }),
);
beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());
beforeEach(() => {
  valid = new Set();
  issued = 0;
  refuse = false;
  rotatedFrom = [];
});

const connector = defineConnector({
  name: "auth-test",
  version: "1.0.0",
  config: Schema.Struct({ refreshToken: Schema.String }),
  auth: async ({ config, refreshState, http }) => {
    const response = await http.request({
      method: "POST",
      url: `${api}/token`,
      body: new URLSearchParams({ refresh_token: refreshState ? Redacted.value(refreshState) : config.refreshToken }),
    });
    if (response.status !== 200)
      throw new AuthExpired({ message: "the vendor refused the refresh token (invalid_grant)" });
    const body = response.body as { access_token: string; expires_in: number; refresh_token: string };
    return {
      accessToken: Redacted.make(body.access_token),
      expiresInMs: body.expires_in * 1000,
      refreshState: Redacted.make(body.refresh_token),
    };
  },
  entities: {},
});

const contextFor = () => makeStandaloneContext(connector, { refreshToken: "configured-refresh" });

describe("ctx.http with an auth hook", () => {
  it("sends the token, and after a 401 obtains a new one with the rotated refresh state and retries once", async () => {
    const ctx = contextFor();
    expect((await ctx.http.request({ url: `${api}/things` })).body).toEqual({ token: "token-1" });
    valid.clear(); // revoked before its stated expiry
    expect((await ctx.http.request({ url: `${api}/things` })).body).toEqual({ token: "token-2" });
    expect(rotatedFrom).toEqual(["configured-refresh", "refresh-1"]);
  });

  it("concurrent requests share one token request", async () => {
    const ctx = contextFor();
    await Promise.all(Array.from({ length: 5 }, () => ctx.http.request({ url: `${api}/things` })));
    expect(issued).toBe(1);
  });

  it("a refused grant rejects every waiting request with one AuthExpired that says to renew the credentials", async () => {
    refuse = true;
    const ctx = contextFor();
    const outcomes = await Promise.allSettled(
      Array.from({ length: 3 }, () => ctx.http.request({ url: `${api}/things` })),
    );
    expect(rotatedFrom).toHaveLength(1);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe("rejected");
      const reason = (outcome as PromiseRejectedResult).reason;
      expect(reason).toBeInstanceOf(AuthExpired);
      expect(reason.message).toBe(
        "auth-test could not obtain an access token: the vendor refused the refresh token (invalid_grant). The connection's credentials must be renewed (update the connection's config).",
      );
    }
  });

  it("a new token refused as well fails with AuthExpired, after one retry", async () => {
    const ctx = contextFor();
    server.use(http.get(`${api}/things`, () => new HttpResponse(null, { status: 401 })));
    const refused = await ctx.http.request({ url: `${api}/things` }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AuthExpired);
    expect((refused as AuthExpired).message).toContain("with a newly obtained access token");
    expect(issued).toBe(2);
  });

  it("authenticate: false sends no token", async () => {
    const ctx = contextFor();
    const answer = await ctx.http.request({ url: `${api}/things`, authenticate: false }).catch((e: unknown) => e);
    expect(answer).toBeInstanceOf(AuthExpired);
    expect(issued).toBe(0);
  });
});
