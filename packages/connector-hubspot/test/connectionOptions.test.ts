import { expect, layer } from "@effect/vitest";
import { EntitySync, rateLimitPolicyOf } from "@tandem/core";
import {
  createHubSpotFake,
  createTestConnection,
  hubSpotFakeToken,
  hubSpotHandlers,
  testEngineLayer,
} from "@tandem/testkit";
import { Effect, Either, Schema, TestServices } from "effect";
import { setupServer } from "msw/node";
import { afterAll, beforeAll, describe, it } from "vitest";
import hubspot, { HubSpotConfig, hubSpotRateLimit } from "../src/index.ts";

/*
 * The connection options that let a HubSpot connection leave HubSpot's defaults: `listPageSize`
 * (full reads) and `requestsPerSecond` (the connection's budget). Defaults must stay HubSpot's.
 */

const baseUrl = "https://hubspot.options.test";
const fake = createHubSpotFake({ baseUrl });
const server = setupServer(...hubSpotHandlers(fake));
beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
afterAll(() => {
  fake.close();
  server.close();
});

const decode = Schema.decodeUnknownEither(HubSpotConfig);
const base = { baseUrl, accessToken: hubSpotFakeToken };

describe("HubSpot connection options", () => {
  it("default to HubSpot's page size and budget", () => {
    const config = Either.getOrThrow(decode(base));
    expect(config.listPageSize).toBe(100);
    expect(config.requestsPerSecond).toBeUndefined();
    expect(rateLimitPolicyOf(hubspot, config)).toBe(hubSpotRateLimit);
  });

  it("requestsPerSecond replaces the budget, and the headers no longer lower it", () => {
    const config = Either.getOrThrow(decode({ ...base, requestsPerSecond: 250 }));
    const policy = rateLimitPolicyOf(hubspot, config);
    expect(policy).toEqual({ requestsPerSecond: 250, burst: 250 });
    expect(policy?.fromHeaders).toBeUndefined();
  });

  it("rejects page sizes and rates that are not positive", () => {
    expect(Either.isLeft(decode({ ...base, listPageSize: 0 }))).toBe(true);
    expect(Either.isLeft(decode({ ...base, listPageSize: 2.5 }))).toBe(true);
    expect(Either.isLeft(decode({ ...base, requestsPerSecond: 0 }))).toBe(true);
  });
});

layer(testEngineLayer({ dialect: "pglite", connectors: [hubspot] }), { timeout: 60_000 })(
  "HubSpot connection options through the engine",
  (it) => {
    it.effect("listPageSize sets the full read's page size", () =>
      TestServices.provideLive(
        Effect.gen(function* () {
          fake.reset();
          fake.knobs.listMaxLimit = 1_000;
          fake.seedContacts(600);
          const ids = yield* createTestConnection("hubspot", { ...base, listPageSize: 250, requestsPerSecond: 1_000 });
          const result = yield* (yield* EntitySync).run({ ...ids, entity: "contacts", mode: "full" });
          expect(result).toMatchObject({ created: 600, errors: [], pages: 3 });
        }),
      ),
    );

    // With HubSpot's budget (9/s, then the nominal 190 per 10 s the fake reports) 120 pages take
    // over ten seconds; a raised budget takes them as fast as the fake answers.
    it.effect("requestsPerSecond lifts the default budget", () =>
      TestServices.provideLive(
        Effect.gen(function* () {
          fake.reset();
          fake.seedContacts(120);
          const ids = yield* createTestConnection("hubspot", { ...base, listPageSize: 1, requestsPerSecond: 100_000 });
          const started = Date.now();
          const result = yield* (yield* EntitySync).run({ ...ids, entity: "contacts", mode: "full" });
          expect(result).toMatchObject({ created: 120, errors: [], pages: 120 });
          expect(Date.now() - started).toBeLessThan(8_000);
        }),
      ),
    );
  },
);
