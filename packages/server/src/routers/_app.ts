import { router } from "../trpc.ts";
import { alertsRouter } from "./alerts.ts";
import { apiKeysRouter } from "./apiKeys.ts";
import { conflictsRouter } from "./conflicts.ts";
import { connectionsRouter } from "./connections.ts";
import { deletionsRouter } from "./deletions.ts";
import { health } from "./health.ts";
import { deadLettersRouter, jobsRouter } from "./jobs.ts";
import { recordsRouter } from "./records.ts";
import { syncRouter } from "./sync.ts";
import { tenantsRouter } from "./tenants.ts";
import { webhooksRouter } from "./webhooks.ts";

export const appRouter = router({
  health,
  tenants: tenantsRouter,
  apiKeys: apiKeysRouter,
  connections: connectionsRouter,
  sync: syncRouter,
  jobs: jobsRouter,
  deadLetters: deadLettersRouter,
  records: recordsRouter,
  conflicts: conflictsRouter,
  deletions: deletionsRouter,
  webhooks: webhooksRouter,
  alerts: alertsRouter,
});

/** The router's type: import it into a client for end-to-end types (`createTRPCClient<AppRouter>`). */
export type AppRouter = typeof appRouter;
