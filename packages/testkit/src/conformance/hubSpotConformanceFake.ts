import type { HubSpotObjectType } from "@tandem/sandbox";
import {
  createHubSpotFake,
  createManualClock,
  type HubSpotFake,
  hubSpotFakeToken,
  hubSpotSignatureHeaders,
  type ManualClock,
} from "@tandem/sandbox";
import { hubSpotHandlers } from "../msw/HubSpotMsw.ts";
import type { ConformanceEntityFake, ConformanceFake } from "./ConformanceFake.ts";

const webhookSecret = "conformance-client-secret";
const webhookUrl = "https://tandem.test/webhooks/hubspot/conformance";
/** Gap between successive changes: timestamps strictly increase, so deltas see exactly what changed. */
const stepMs = 1_000;

/** A HubSpot-style `*.deletion` delivery for one object, signed with v3 at the fake's now. */
const deletionDelivery = (fake: HubSpotFake, type: HubSpotObjectType, id: string) => {
  const now = fake.clock.now();
  const rawBody = JSON.stringify([
    {
      eventId: now,
      subscriptionId: 1002,
      portalId: 62515,
      appId: 54321,
      occurredAt: now,
      subscriptionType: `${type === "contacts" ? "contact" : "company"}.deletion`,
      attemptNumber: 0,
      objectId: Number(id),
      changeSource: "CRM",
      changeFlag: "DELETED",
    },
  ]);
  const headers = hubSpotSignatureHeaders({
    clientSecret: webhookSecret,
    method: "POST",
    uri: webhookUrl,
    body: rawBody,
    timestamp: now,
    versions: ["v3"],
  });
  return {
    request: {
      method: "POST",
      url: webhookUrl,
      headers: new Headers({ "content-type": "application/json", ...headers }),
      rawBody,
    },
    now: new Date(now),
  };
};

const entity = (
  fake: HubSpotFake,
  clock: ManualClock,
  type: HubSpotObjectType,
  samples: ConformanceEntityFake["writeSamples"],
  properties: (n: number) => Record<string, string>,
  change: Record<string, string>,
): ConformanceEntityFake => {
  let created = 0;
  const step = () => clock.advance(stepMs);
  return {
    seed: (n) => {
      fake.store.seed(type, n, { spacingMs: stepMs, endAt: fake.clock.now() });
    },
    snapshot: () => new Map(fake.live(type).map((o) => [o.id, new Date(o.updatedAt)])),
    create: () => {
      step();
      const outcome = fake.store.create(type, properties(++created));
      if ("failure" in outcome) throw new Error(outcome.failure.message);
      return outcome.object.id;
    },
    update: (id) => {
      step();
      const outcome = fake.store.update(type, id, change);
      if ("failure" in outcome) throw new Error(outcome.failure.message);
    },
    remove: (id) => {
      step();
      fake.store.archive(type, id);
    },
    deletionWebhook: (id) => deletionDelivery(fake, type, id),
    ...(samples !== undefined ? { writeSamples: samples } : {}),
  };
};

/**
 * The HubSpot fake as a ConformanceFake: a manual clock (every change one second after
 * the last), MSW handlers, a private app token, and webhook verification with v3.
 *
 * @example
 * describeConnector(hubspot, hubSpotConformanceFake());
 */
export const hubSpotConformanceFake = (
  options: { readonly baseUrl?: string } = {},
): ConformanceFake & { readonly fake: HubSpotFake } => {
  const clock = createManualClock(Date.UTC(2026, 2, 1));
  const fake = createHubSpotFake({ baseUrl: options.baseUrl ?? "https://hubspot.conformance.test", clock });
  let n = 0;
  return {
    fake,
    handlers: hubSpotHandlers(fake),
    config: {
      baseUrl: fake.baseUrl,
      accessToken: hubSpotFakeToken,
      webhooks: { clientSecret: webhookSecret, signatureVersions: ["v3"] },
    },
    // The list endpoint pages 100 at a time: two pages.
    seedCount: 150,
    reset: () => fake.reset(),
    failNext: (failure) =>
      fake.failNext(
        failure.status === 401
          ? { kind: "status", status: 401 }
          : { kind: "rateLimit", retryAfterSeconds: failure.retryAfterSeconds },
      ),
    entities: {
      contacts: entity(
        fake,
        clock,
        "contacts",
        {
          create: () => ({ email: `conformance-${++n}@example.com`, firstName: "Grace", lastName: "Hopper" }),
          update: () => ({ lifecycleStage: "customer", jobTitle: "Rear Admiral" }),
        },
        (k) => ({ email: `created-${k}@example.com`, firstname: "New" }),
        { lifecyclestage: "opportunity" },
      ),
      companies: entity(
        fake,
        clock,
        "companies",
        {
          create: () => ({ name: `Conformance Co ${++n}`, domain: `conformance${n}.example.com` }),
          update: () => ({ city: "Porto", industry: "RETAIL" }),
        },
        (k) => ({ name: `Created Co ${k}` }),
        { city: "Kyoto" },
      ),
    },
  };
};
