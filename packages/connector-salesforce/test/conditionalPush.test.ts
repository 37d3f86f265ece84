import { createManualClock, createSalesforceFake, salesforceFakeOAuthApp, salesforceHandlers } from "@tandem/testkit";
import { describeConditionalPush } from "@tandem/testkit/engine-suites";
import salesforce from "../src/index.ts";

/*
 * Pushes to Salesforce are conditional, deletes included (testkit's conditional-push suite), over
 * the Salesforce fake (MSW) on PostgreSQL. Updates carry If-Unmodified-Since; DELETE takes no
 * conditional header (neither sObject Rows nor Collections), so a delete is checked against a
 * retrieve of the versions just before; two deletes go as one collection DELETE. A deleted
 * account stays in the fake with IsDeleted (the recycle bin).
 */

const instanceUrl = "https://acme.conditional-push.my.salesforce.test";
const clock = createManualClock(Date.UTC(2026, 4, 1));
const fake = createSalesforceFake({ instanceUrl, clock, knobs: { minBatchSize: 1 } });

describeConditionalPush(salesforce, {
  vendor: "Salesforce",
  handlers: salesforceHandlers(fake),
  config: {
    instanceUrl,
    clientId: salesforceFakeOAuthApp.clientId,
    clientSecret: salesforceFakeOAuthApp.clientSecret,
    refreshToken: salesforceFakeOAuthApp.refreshToken,
    pageSize: 200,
    outboundMessageOrgId: fake.organizationId,
  },
  entity: "accounts",
  reset: () => fake.reset(),
  close: () => fake.close(),
  // Salesforce's versions are whole seconds (If-Unmodified-Since): every change is a second later.
  tick: () => clock.advance(1_000),
  seed: (n) => fake.seedAccounts(n).map((account) => account.Id),
  remote: (id) => {
    const account = fake.store.get("Account", id)!;
    return { deleted: account.IsDeleted, fields: account.fields };
  },
  editRemotely: (id) => fake.store.update("Account", id, { Industry: "Edited remotely" }),
  edited: { remote: { Industry: "Edited remotely" }, local: { industry: "Edited remotely" } },
  // The conditional PATCH of one account.
  writeRequest: { method: "PATCH", path: /\/sobjects\/Account\/[^/]+$/ },
  inFlightEdits: {
    first: { industry: "First" },
    second: {
      local: { industry: "Second", phone: "+1 555 0100" },
      remote: { Industry: "Second", Phone: "+1 555 0100" },
    },
  },
});
