import { defineConnector } from "@tandem/connector-sdk";
import { taskboardRateLimit, taskboardRequest } from "./client.ts";
import { TaskboardConfig } from "./config.ts";
import { tasks } from "./entities/tasks.ts";
import { taskboardWebhooks } from "./webhooks.ts";

export { TaskboardConfig } from "./config.ts";
export { Task } from "./entities/tasks.ts";
export { taskboardSignature } from "./webhooks.ts";

/**
 * Taskboard (a fictional task API): one entity, `tasks`. Load it with
 * `TANDEM_CONNECTORS=@acme/tandem-connector-template`.
 */
export default defineConnector({
  name: "taskboard",
  version: "0.1.0",
  config: TaskboardConfig,
  // `connections.test` calls this: one cheap authenticated request.
  check: async (ctx) => {
    await taskboardRequest(ctx, { path: "/v1/tasks", query: { limit: 1 } });
  },
  entities: { tasks },
  webhooks: taskboardWebhooks,
  rateLimit: taskboardRateLimit,
});
