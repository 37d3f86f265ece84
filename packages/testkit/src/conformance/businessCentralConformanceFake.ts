import type { BusinessCentralEntitySet } from "@tandem/sandbox";
import {
  type BusinessCentralFake,
  businessCentralFakeApp,
  businessCentralFakeIds,
  createBusinessCentralFake,
  createManualClock,
  type ManualClock,
} from "@tandem/sandbox";
import { businessCentralHandlers } from "../msw/BusinessCentralMsw.ts";
import type { ConformanceEntityFake, ConformanceFake } from "./ConformanceFake.ts";

/** Gap between successive changes: timestamps strictly increase, so deltas see exactly what changed. */
const stepMs = 1_000;
/** Small pages, so the seeded records span several and resuming from a cursor means something. */
const pageSize = 50;

const entity = (
  fake: BusinessCentralFake,
  clock: ManualClock,
  entitySet: BusinessCentralEntitySet,
  fields: (n: number) => Record<string, unknown>,
  change: Record<string, unknown>,
  samples: ConformanceEntityFake["writeSamples"],
): ConformanceEntityFake => {
  let created = 0;
  const step = () => clock.advance(stepMs);
  const succeed = (outcome: ReturnType<BusinessCentralFake["store"]["create"]>) => {
    if ("failure" in outcome) throw new Error(outcome.failure.message);
    return outcome.record;
  };
  return {
    seed: (n) => {
      fake.store.seed(entitySet, n, { spacingMs: stepMs, endAt: clock.now() });
    },
    snapshot: () => new Map(fake.records(entitySet).map((r) => [r.id, new Date(r.lastModifiedAt)])),
    create: () => {
      step();
      return succeed(fake.store.create(entitySet, fields(++created))).id;
    },
    update: (id) => {
      step();
      succeed(fake.store.update(entitySet, id, change));
    },
    remove: (id) => {
      step();
      fake.store.remove(entitySet, id);
    },
    // No `deletionWebhook`: BC's notifications carry no signature over the body, only the
    // shared `clientState` inside it, so the suite's tampered-body check cannot hold for them.
    // The connector's webhook tests cover verification and parsing instead.
    ...(samples !== undefined ? { writeSamples: samples } : {}),
  };
};

/**
 * The Business Central fake as a ConformanceFake: a manual clock (every change one second
 * after the last), MSW handlers for the API and the token endpoint, client credentials, and
 * pages of 50.
 *
 * A 401 is served twice (`failNext({ status: 401 })`): client credentials can always be
 * exchanged for a new token, so the connector rightly refreshes and retries once; the second
 * 401 is the refusal the suite expects as AuthExpired.
 *
 * @example
 * describeConnector(erp, businessCentralConformanceFake());
 */
export const businessCentralConformanceFake = (
  options: { readonly baseUrl?: string; readonly authorityUrl?: string } = {},
): ConformanceFake & { readonly fake: BusinessCentralFake } => {
  const clock = createManualClock(Date.UTC(2026, 2, 1));
  const fake = createBusinessCentralFake({
    baseUrl: options.baseUrl ?? "https://bc.conformance.test",
    authorityUrl: options.authorityUrl ?? "https://login.conformance.test",
    clock,
  });
  let n = 0;
  return {
    fake,
    handlers: businessCentralHandlers(fake),
    config: {
      baseUrl: fake.baseUrl,
      authorityUrl: fake.authorityUrl,
      tenantId: businessCentralFakeIds.tenantId,
      environment: businessCentralFakeIds.environment,
      companyId: businessCentralFakeIds.companyId,
      clientId: businessCentralFakeApp.clientId,
      clientSecret: businessCentralFakeApp.clientSecret,
      pageSize,
      webhookClientState: "conformance-client-state",
    },
    seedCount: 120,
    reset: () => fake.reset(),
    failNext: (failure) =>
      failure.status === 401
        ? fake.failNext({ kind: "status", status: 401 }, { kind: "status", status: 401 })
        : fake.failNext({ kind: "rateLimit", retryAfterSeconds: failure.retryAfterSeconds }),
    entities: {
      items: entity(
        fake,
        clock,
        "items",
        (k) => ({ displayName: `Created item ${k}`, type: "Inventory", unitPrice: 10 + k }),
        { unitPrice: 99.5 },
        {
          create: () => ({ displayName: `Conformance item ${++n}`, type: "Service", unitPrice: 12.5, gtin: null }),
          update: () => ({ displayName: "Renamed item", unitCost: 4.25, blocked: true }),
        },
      ),
      customers: entity(
        fake,
        clock,
        "customers",
        (k) => ({ displayName: `Created customer ${k}`, email: `created-${k}@example.com` }),
        { phoneNumber: "+1-425-555-0199" },
        {
          create: () => ({ displayName: `Conformance customer ${++n}`, email: `conformance-${n}@example.com` }),
          update: () => ({ phoneNumber: "+1-425-555-0100", blocked: "invoice" }),
        },
      ),
    },
  };
};
