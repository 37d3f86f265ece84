import { router } from "../trpc.ts";
import { apiKeysRouter } from "./apiKeys.ts";
import { connectionsRouter } from "./connections.ts";
import { health } from "./health.ts";
import { tenantsRouter } from "./tenants.ts";

export const appRouter = router({
  health,
  tenants: tenantsRouter,
  apiKeys: apiKeysRouter,
  connections: connectionsRouter,
});

/** The router's type: import it into a client for end-to-end types (`createTRPCClient<AppRouter>`). */
export type AppRouter = typeof appRouter;
