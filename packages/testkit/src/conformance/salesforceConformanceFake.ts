import type { SalesforceObjectType } from "@tandem/sandbox";
import {
  createManualClock,
  createSalesforceFake,
  type ManualClock,
  type SalesforceFake,
  salesforceFakeOAuthApp,
} from "@tandem/sandbox";
import { salesforceHandlers } from "../msw/SalesforceMsw.ts";
import type { ConformanceEntityFake, ConformanceFake } from "./ConformanceFake.ts";

/** Gap between successive changes: timestamps strictly increase, so deltas see exactly what changed. */
const stepMs = 1_000;

const entity = (
  fake: SalesforceFake,
  clock: ManualClock,
  type: SalesforceObjectType,
  fields: (n: number) => Record<string, string>,
  change: Record<string, string>,
  samples: ConformanceEntityFake["writeSamples"],
): ConformanceEntityFake => {
  let created = 0;
  const step = () => clock.advance(stepMs);
  const check = (outcome: ReturnType<SalesforceFake["store"]["create"]>) => {
    if ("errors" in outcome) throw new Error(outcome.errors.map((e) => `${e.errorCode}: ${e.message}`).join("; "));
    return outcome.record;
  };
  return {
    seed: (n) => {
      fake.store.seed(type, n, { spacingMs: stepMs, endAt: fake.clock.now() });
    },
    snapshot: () => new Map(fake.live(type).map((r) => [r.Id, new Date(r.SystemModstamp)])),
    create: () => {
      step();
      return check(fake.store.create(type, fields(++created))).Id;
    },
    update: (id) => {
      step();
      check(fake.store.update(type, id, change));
    },
    remove: (id) => {
      step();
      check(fake.store.delete(type, id));
    },
    writeSamples: samples,
  };
};

/**
 * The Salesforce fake as a ConformanceFake: a manual clock (every change one second after the
 * last), MSW handlers, the fake's connected app, and query pages of 200 (Salesforce's smallest
 * batch size) over 250 seeded records.
 *
 * The connector always holds a refresh token, so a bare 401 would be recovered from (rightly):
 * `failNext({ status: 401 })` also makes the next refresh fail with `invalid_grant`, the case in
 * which a Salesforce connection really needs re-authorizing.
 *
 * @example
 * describeConnector(salesforce, salesforceConformanceFake());
 */
export const salesforceConformanceFake = (
  options: { readonly instanceUrl?: string } = {},
): ConformanceFake & { readonly fake: SalesforceFake } => {
  const clock = createManualClock(Date.UTC(2026, 2, 1));
  const fake = createSalesforceFake({
    instanceUrl: options.instanceUrl ?? "https://conformance.my.salesforce.test",
    clock,
  });
  let n = 0;
  return {
    fake,
    handlers: salesforceHandlers(fake),
    config: {
      instanceUrl: fake.instanceUrl,
      clientId: salesforceFakeOAuthApp.clientId,
      clientSecret: salesforceFakeOAuthApp.clientSecret,
      refreshToken: salesforceFakeOAuthApp.refreshToken,
      pageSize: 200,
      outboundMessageOrgId: fake.organizationId,
    },
    seedCount: 250,
    reset: () => fake.reset(),
    failNext: (failure) => {
      if (failure.status === 401) {
        fake.failNext({ kind: "sessionExpired" });
        fake.failNextTokenRequest({ kind: "invalidGrant" });
      } else fake.failNext({ kind: "status", status: 429, retryAfterSeconds: failure.retryAfterSeconds });
    },
    entities: {
      contacts: entity(
        fake,
        clock,
        "Contact",
        (k) => ({ LastName: `Created ${k}`, Email: `created-${k}@example.com` }),
        { Phone: "+15550000000" },
        {
          create: () => ({ firstName: "Grace", lastName: `Hopper ${++n}`, email: `conformance-${n}@example.com` }),
          update: () => ({ phone: "+15551234567", firstName: "Amazing Grace" }),
        },
      ),
      accounts: entity(
        fake,
        clock,
        "Account",
        (k) => ({ Name: `Created Co ${k}` }),
        { Industry: "Retail" },
        {
          create: () => ({ name: `Conformance Co ${++n}`, website: `https://conformance${n}.example.com` }),
          update: () => ({ industry: "Banking", phone: "+15559876543" }),
        },
      ),
    },
  };
};
