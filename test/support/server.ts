import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateApiKey, generateSecretKey } from "@tandem/core";
import { type AppRouter, configFromEnv, type RunningServer, startServer } from "@tandem/server";
import { type Dialect, freshDatabaseConfig, loopbackEgressAllow } from "@tandem/testkit";
import { createTRPCClient, httpLink, httpSubscriptionLink, splitLink } from "@trpc/client";
import { Effect, Exit, Scope } from "effect";
import { EventSource } from "eventsource";

export interface TestServer {
  readonly server: RunningServer;
  readonly adminKey: string;
  readonly secretKey: string;
  /** The server's database on PostgreSQL (undefined on PGlite), for tests that read it directly. */
  readonly databaseUrl: string | undefined;
  /** A typed client; pass an API key, or nothing for an anonymous one. */
  readonly client: (key?: string) => ReturnType<typeof createTRPCClient<AppRouter>>;
  readonly close: () => Promise<void>;
}

/**
 * A real Tandem server on a loopback port, over a fresh database of the given dialect. Its egress
 * policy allows loopback unless `env` sets `TANDEM_EGRESS_ALLOW`.
 */
export const startTestServer = async (dialect: Dialect, env: Record<string, string> = {}): Promise<TestServer> => {
  const scope = await Effect.runPromise(Scope.make());
  const database = await Effect.runPromise(Scope.extend(freshDatabaseConfig(dialect), scope));
  const dataDir = mkdtempSync(join(tmpdir(), "tandem-test-"));
  const adminKey = generateApiKey();
  const secretKey = generateSecretKey();
  const config = await Effect.runPromise(
    configFromEnv({
      TANDEM_DATA_DIR: dataDir,
      DATABASE_URL: database.kind === "postgres" ? database.url : undefined,
      TANDEM_SECRET_KEY: secretKey,
      TANDEM_ADMIN_KEY: adminKey,
      PORT: "0",
      LOG_LEVEL: "error",
      // The fakes the tests sync from listen on loopback; pass "" to test the strict policy.
      TANDEM_EGRESS_ALLOW: loopbackEgressAllow,
      // Tests trigger their syncs. The default schedules (deltas at :00, :15, :30, :45) would
      // otherwise run one whenever a test happens to straddle a quarter hour, and a sync the
      // test then triggers finds every record already there. New Year's midnight only.
      TANDEM_DELTA_CRON: "0 0 1 1 *",
      TANDEM_RECONCILE_CRON: "0 0 1 1 *",
      TANDEM_RECONCILE_SAFETY_NET_CRON: "0 0 1 1 *",
      ...env,
    }),
  );
  const server = await startServer(config);
  return {
    server,
    adminKey,
    secretKey,
    databaseUrl: database.kind === "postgres" ? database.url : undefined,
    client: (key) => {
      const headers: Record<string, string> = key === undefined ? {} : { authorization: `Bearer ${key}` };
      return createTRPCClient<AppRouter>({
        links: [
          splitLink({
            condition: (op) => op.type === "subscription",
            // Server-sent events; Node has no EventSource of its own, the eventsource package does.
            true: httpSubscriptionLink({
              url: `${server.url}/trpc`,
              EventSource,
              eventSourceOptions: () => ({
                fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, ...headers } }),
              }),
            }),
            false: httpLink({ url: `${server.url}/trpc`, headers: () => headers }),
          }),
        ],
      });
    },
    close: async () => {
      await server.close();
      await Effect.runPromise(Scope.close(scope, Exit.void));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
};

/** The tRPC error code of a rejected call (fails the test if the call succeeded). */
export const trpcCode = async (call: Promise<unknown>): Promise<string> => {
  try {
    await call;
  } catch (error) {
    return (error as { data?: { code?: string } }).data?.code ?? `not a tRPC error: ${String(error)}`;
  }
  return "call succeeded";
};
