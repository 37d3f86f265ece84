import { expect, layer } from "@effect/vitest";
import { Database, EntitySync, JobQueue, SyncJobHandlers, type SyncTarget, SyncTriggers } from "@tandem/core";
import {
  createSalesforceFake,
  createTestConnection,
  dialects,
  salesforceFakeOAuthApp,
  salesforceHandlers,
  storedRecords,
  testEngineLayer,
} from "@tandem/testkit";
import { Effect, TestServices } from "effect";
import { setupServer } from "msw/node";
import { afterAll, beforeAll } from "vitest";
import salesforce from "../src/index.ts";

/*
 * Credentials are the engine's: Salesforce's `auth` hook through ConnectorCredentials, on PGlite
 * and PostgreSQL, against the testkit's Salesforce fake (MSW). Token requests are counted at the fake.
 */

/** One org per dialect: a rotated refresh token stays rotated at its fake (reset keeps the apps). */
const orgs = dialects.map((dialect) => {
  const instanceUrl = `https://credentials-${dialect}.my.salesforce.test`;
  return { dialect, instanceUrl, fake: createSalesforceFake({ instanceUrl, knobs: { minBatchSize: 1 } }) };
});
const server = setupServer(...orgs.flatMap((org) => salesforceHandlers(org.fake)));
beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
afterAll(() => {
  for (const org of orgs) org.fake.close();
  server.close();
});

/** Calls `f` when the fake receives its `nth` query page request (1-based), before answering it. */
const onQueryRequest = (nth: number, f: () => void) => {
  let seen = 0;
  const listener = ({ request }: { request: Request }) => {
    if (new URL(request.url).pathname.includes("/query") && ++seen === nth) f();
  };
  server.events.on("request:start", listener);
  return () => server.events.removeListener("request:start", listener);
};

const services = (dialect: (typeof dialects)[number]) => testEngineLayer({ dialect, connectors: [salesforce] });

const realSleep = (ms: number) => Effect.promise(() => new Promise((r) => setTimeout(r, ms)));

for (const { dialect, instanceUrl, fake } of orgs) {
  const config = {
    instanceUrl,
    clientId: salesforceFakeOAuthApp.clientId,
    clientSecret: salesforceFakeOAuthApp.clientSecret,
    refreshToken: salesforceFakeOAuthApp.refreshToken,
    pageSize: 100,
  };

  const tokenRequests = () => fake.requests().filter((r) => r.path === "/services/oauth2/token");

  /** A clean fake and a new connection to it (each connection holds its own grant). */
  const setup = (entity = "contacts") =>
    Effect.gen(function* () {
      fake.reset();
      const ids = yield* createTestConnection("salesforce", config);
      return { ...ids, entity } satisfies SyncTarget;
    });

  layer(services(dialect), { timeout: 60_000 })(`engine-managed credentials on ${dialect}`, (it) => {
    it.effect("a token that expires mid-run is refreshed once, and the run completes", () =>
      Effect.gen(function* () {
        const target = yield* setup();
        fake.seedContacts(350);
        // The second page's request finds every issued session expired.
        const stop = onQueryRequest(2, () => fake.expireSessions());
        const result = yield* (yield* EntitySync)
          .run({ ...target, mode: "full" })
          .pipe(Effect.ensuring(Effect.sync(stop)));
        expect(result.created).toBe(350);
        expect((yield* storedRecords(target)).size).toBe(350);
        expect(tokenRequests().map((r) => r.status)).toEqual([200, 200]);
        expect(fake.requests().filter((r) => r.status === 401)).toHaveLength(1);
      }),
    );

    it.effect("concurrent jobs of one connection obtain one token", () =>
      Effect.gen(function* () {
        const contacts = yield* setup();
        const accounts = { ...contacts, entity: "accounts" };
        fake.seedContacts(120);
        fake.seedAccounts(120);
        const engine = yield* EntitySync;
        const [a, b] = yield* Effect.all(
          [engine.run({ ...contacts, mode: "full" }), engine.run({ ...accounts, mode: "full" })],
          { concurrency: "unbounded" },
        );
        expect([a.created, b.created]).toEqual([120, 120]);
        expect(tokenRequests()).toHaveLength(1);

        // Expired under both at once: one refresh serves both.
        fake.expireSessions();
        yield* Effect.all([engine.run({ ...contacts, mode: "full" }), engine.run({ ...accounts, mode: "full" })], {
          concurrency: "unbounded",
        });
        expect(tokenRequests()).toHaveLength(2);
      }),
    );

    it.effect("a rotated refresh token is stored encrypted, and the next refresh uses it", () =>
      Effect.gen(function* () {
        const target = yield* setup();
        fake.knobs.rotateRefreshTokens = true;
        fake.seedContacts(5);
        const engine = yield* EntitySync;
        yield* engine.run({ ...target, mode: "full" });

        const db = yield* Database;
        const row = yield* db.query((k) =>
          k
            .selectFrom("connections")
            .select(["refresh_state_ciphertext", "config_ciphertext"])
            .where("id", "=", target.connectionId)
            .executeTakeFirstOrThrow(),
        );
        // An AES-GCM envelope, not the token: the fake's rotated tokens start "5Aep861rotated.".
        expect(row.refresh_state_ciphertext).toMatch(/^v1\./);
        expect(row.refresh_state_ciphertext).not.toContain("5Aep861");
        expect(row.config_ciphertext).not.toContain("5Aep861");

        // The configured refresh token no longer works at the fake: a refresh succeeds only with the stored one.
        fake.expireSessions();
        const again = yield* engine.run({ ...target, mode: "full" });
        expect(again.unchanged).toBe(5);
        expect(tokenRequests().map((r) => r.status)).toEqual([200, 200]);
      }),
    );

    it.effect("a refresh the vendor refuses dead-letters the job at once, saying the credentials must be renewed", () =>
      TestServices.provideLive(
        Effect.gen(function* () {
          const target = yield* setup();
          fake.seedContacts(3);
          fake.failNextTokenRequest({ kind: "invalidGrant" });
          const triggers = yield* SyncTriggers;
          const { handlers } = yield* SyncJobHandlers;
          const queue = yield* JobQueue;
          const { jobId } = yield* triggers.trigger(target.tenantId, { ...target, mode: "full" });
          yield* Effect.scoped(
            Effect.gen(function* () {
              yield* queue.worker({ handlers, pollMs: 50 });
              for (let i = 0; i < 400; i++) {
                if ((yield* queue.get(jobId)).status === "dead") break;
                yield* realSleep(25);
              }
            }),
          );
          const job = yield* queue.get(jobId);
          expect(job.status).toBe("dead");
          expect(job.attempts).toBe(1);
          expect(job.lastError?.tag).toBe("AuthExpired");
          expect(job.lastError?.message).toContain("Salesforce refused the refresh token (invalid_grant)");
          expect(job.lastError?.message).toContain("The connection's credentials must be renewed");
          for (const secret of [salesforceFakeOAuthApp.refreshToken, salesforceFakeOAuthApp.clientSecret]) {
            expect(job.lastError?.message).not.toContain(secret);
          }
          // The queue's retry after a refusal does not ask the vendor again.
          expect(tokenRequests()).toHaveLength(1);
        }),
      ),
    );
  });
}
