import {
  businessCentralFakeApp,
  businessCentralFakeIds,
  businessCentralHandlers,
  createBusinessCentralFake,
  createManualClock,
} from "@tandem/testkit";
import { describeConditionalPush } from "@tandem/testkit/engine-suites";
import erp from "../src/index.ts";

/*
 * Pushes to Business Central are conditional, deletes included (testkit's conditional-push suite),
 * over the BC fake (MSW) on PostgreSQL: updates and deletes carry If-Match, the etag the change
 * was made against (409 Request_EntityChanged when it is stale); two deletes go as one $batch,
 * each DELETE with its own If-Match. A delete removes the item for good.
 */

const baseUrl = "https://bc.conditional-push.test";
const authorityUrl = "https://login.conditional-push.test";
const clock = createManualClock(Date.UTC(2026, 4, 1));
const fake = createBusinessCentralFake({ baseUrl, authorityUrl, clock });

describeConditionalPush(erp, {
  vendor: "Business Central",
  handlers: businessCentralHandlers(fake),
  config: {
    baseUrl,
    authorityUrl,
    ...businessCentralFakeIds,
    clientId: businessCentralFakeApp.clientId,
    clientSecret: businessCentralFakeApp.clientSecret,
    pageSize: 100,
    requestsPerSecond: 10_000,
  },
  entity: "items",
  reset: () => fake.reset(),
  tick: () => clock.advance(1_000),
  seed: (n) => fake.seedItems(n).map((item) => item.id),
  remote: (id) => {
    const item = fake.store.get("items", id);
    return { deleted: item === undefined, fields: item?.fields ?? {} };
  },
  editRemotely: (id) => fake.store.update("items", id, { displayName: "Edited remotely" }),
  edited: { remote: { displayName: "Edited remotely" }, local: { displayName: "Edited remotely" } },
  // The PATCH carries If-Match: the etag pulled.
  writeRequest: { method: "PATCH", path: /\/items\([^)]+\)$/ },
  inFlightEdits: {
    first: { displayName: "First" },
    second: { local: { displayName: "Second", unitPrice: 42 }, remote: { displayName: "Second", unitPrice: 42 } },
  },
});
