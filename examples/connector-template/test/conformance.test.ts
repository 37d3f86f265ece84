import { type ConformanceFake, describeConnector } from "@tandem/testkit/conformance";
import taskboard from "../src/index.ts";
import { createTaskboardFake } from "./fake/TaskboardFake.ts";

const api = createTaskboardFake();
const webhookSecret = "whsec_template";

/** The adapter `describeConnector` drives: how to seed, change and inspect the fake. */
const fake: ConformanceFake = {
  handlers: api.handlers,
  // Encoded, as an operator would enter it; 10 a page so the seed spans three pages.
  config: { baseUrl: api.baseUrl, apiKey: api.apiKey, pageSize: 10, webhookSecret },
  seedCount: 25,
  reset: api.reset,
  failNext: (failure) => api.failNext(failure.status, failure.status === 429 ? failure.retryAfterSeconds : undefined),
  entities: {
    tasks: {
      seed: (n) => {
        for (let i = 0; i < n; i++) api.create();
      },
      snapshot: () => new Map([...api.tasks.values()].map((t) => [t.task_id, new Date(t.modified_at)])),
      create: () => api.create({ title: "Created in the fake" }).task_id,
      update: (id) => {
        api.update(id, { done: true });
      },
      remove: (id) => {
        api.remove(id);
      },
      deletionWebhook: (id) => ({
        request: api.webhook(webhookSecret, [{ event_id: `evt-${id}`, type: "task.deleted", task_id: id }]),
        now: new Date(api.now()),
      }),
      writeSamples: {
        create: () => ({ title: "Write the guide", completed: false, assigneeEmail: "ada@example.com" }),
        update: () => ({ completed: true, assigneeEmail: null }),
      },
    },
  },
};

describeConnector(taskboard, fake);
