import {
  createHubSpotFake,
  type FakeClock,
  type HubSpotFake,
  hubSpotFakeToken,
  hubSpotHandlers,
  hubSpotSignatureHeaders,
  serveHubSpotFake,
} from "@tandem/testkit";
import type { TwoWayVendor, VendorFields, VendorSession, VendorTransport, VendorWrite } from "../TwoWayVendor.ts";

/*
 * The HubSpot fake (contacts) as a two-way matrix vendor. Its clock is the wall clock (HubSpot's
 * v3 webhook signature carries a timestamp the receiver checks against its own), made strictly
 * increasing so that every change is later than the one before it.
 */

const clientSecret = "two-way-matrix-client-secret";
/** Sessions run side by side over MSW: each answers on an origin of its own. */
let sessions = 0;

/** Normalized field -> HubSpot property, for the fields the matrix reads and writes. */
const properties = {
  email: "email",
  firstName: "firstname",
  lastName: "lastname",
  phone: "phone",
  company: "company",
  jobTitle: "jobtitle",
  lifecycleStage: "lifecyclestage",
} as const;

const toProperties = (fields: VendorFields): Record<string, string> =>
  Object.fromEntries(
    Object.entries(fields).map(([field, value]) => {
      const property = properties[field as keyof typeof properties];
      if (property === undefined) throw new Error(`the HubSpot matrix adapter knows no field ${field}`);
      return [property, value === null || value === undefined ? "" : String(value)];
    }),
  );

const fromProperties = (stored: Record<string, string | null>): VendorFields =>
  Object.fromEntries(
    Object.entries(properties).map(([field, property]) => {
      const value = stored[property];
      return [field, value === undefined || value === "" ? null : value];
    }),
  );

/** The wall clock, never answering the same millisecond twice. */
const increasingClock = (): FakeClock => {
  let last = 0;
  return {
    now: () => {
      last = Math.max(Date.now(), last + 1);
      return last;
    },
  };
};

/** What a write request did, from the request and the fake's answer (undefined: not a write). */
const writeOf = (method: string, path: string, requestBody: string, responseBody: unknown): VendorWrite | undefined => {
  const segments = path
    .split("?")[0]!
    .split("/")
    .filter((s) => s !== "");
  if (segments[0] !== "crm" || segments[2] !== "objects" || segments[3] !== "contacts") return undefined;
  const rest = segments.slice(4);
  const answer = (responseBody ?? {}) as { id?: string; results?: Array<{ id: string }> };
  const resultIds = () => (answer.results ?? []).map((r) => String(r.id));
  const inputIds = () => {
    try {
      return ((JSON.parse(requestBody) as { inputs?: Array<{ id?: string }> }).inputs ?? []).map((i) => String(i.id));
    } catch {
      return [];
    }
  };
  if (rest.length === 0 && method === "POST") return { kind: "create", ids: answer.id ? [String(answer.id)] : [] };
  if (rest[0] === "batch" && method === "POST") {
    if (rest[1] === "create") return { kind: "create", ids: resultIds() };
    if (rest[1] === "update") return { kind: "update", ids: resultIds() };
    if (rest[1] === "archive") return { kind: "delete", ids: inputIds() };
    return undefined;
  }
  if (rest.length === 1 && rest[0] !== "search" && method === "PATCH") return { kind: "update", ids: [rest[0]!] };
  if (rest.length === 1 && method === "DELETE") return { kind: "delete", ids: [rest[0]!] };
  return undefined;
};

/** The fake, with every write request it answers logged for the matrix. */
const withWriteLog = (fake: HubSpotFake, log: Array<VendorWrite>): HubSpotFake => ({
  ...fake,
  handle: async (request) => {
    const response = await fake.handle(request);
    const write = writeOf(request.method.toUpperCase(), request.url.pathname, request.body, response.body);
    if (write !== undefined) log.push(write);
    return response;
  },
});

const start = async (transport: VendorTransport): Promise<VendorSession> => {
  const writes: Array<VendorWrite> = [];
  const clock = increasingClock();
  let fake: HubSpotFake;
  let baseUrl: string;
  let handlers: VendorSession["handlers"] = [];
  let close: () => Promise<void>;
  if (transport === "msw") {
    baseUrl = `https://hubspot-${++sessions}.twoway.test`;
    fake = createHubSpotFake({ baseUrl, clock });
    handlers = hubSpotHandlers(withWriteLog(fake, writes));
    close = async () => fake.close();
  } else {
    const inner = createHubSpotFake({ baseUrl: "http://127.0.0.1", clock });
    const served = await serveHubSpotFake({ fake: withWriteLog(inner, writes), port: 0 });
    fake = inner;
    baseUrl = served.url;
    close = served.close;
  }
  // No rate limit in the way of the matrix's bursts.
  const relax = () => {
    fake.knobs.rateLimit = { max: 1_000_000, intervalMs: 1_000 };
  };
  relax();
  const outcome = (result: ReturnType<HubSpotFake["store"]["create"]>) => {
    if ("failure" in result) throw new Error(`HubSpot refused: ${result.failure.message}`);
    return result.object;
  };
  return {
    config: {
      baseUrl,
      accessToken: hubSpotFakeToken,
      webhooks: { clientSecret, signatureVersions: ["v3"] },
    },
    handlers,
    reset: () => {
      fake.reset();
      relax();
      writes.length = 0;
    },
    close,
    create: async (fields) => outcome(fake.store.create("contacts", toProperties(fields))).id,
    edit: async (id, fields) => {
      outcome(fake.store.update("contacts", id, toProperties(fields)));
    },
    remove: async (id) => {
      fake.store.archive("contacts", id);
    },
    read: (id) => {
      const object = fake.store.get("contacts", id);
      return object === undefined || object.archived ? undefined : fromProperties(object.properties);
    },
    liveIds: () => fake.live("contacts").map((o) => o.id),
    writes: () => [...writes],
    notification: (id, kind, endpointUrl) => {
      const now = clock.now();
      const body = JSON.stringify([
        {
          eventId: now,
          subscriptionId: 2_001,
          portalId: 62_515,
          appId: 54_321,
          occurredAt: now,
          subscriptionType: kind === "delete" ? "contact.deletion" : "contact.propertyChange",
          attemptNumber: 0,
          objectId: Number(id),
          changeSource: "CRM",
          ...(kind === "delete" ? { changeFlag: "DELETED" } : { propertyName: "jobtitle" }),
        },
      ]);
      const headers = hubSpotSignatureHeaders({
        clientSecret,
        method: "POST",
        uri: endpointUrl,
        body,
        timestamp: now,
        versions: ["v3"],
      });
      return { method: "POST", headers: { "content-type": "application/json", ...headers }, body };
    },
  };
};

let counter = 0;

export const hubspotVendor: TwoWayVendor = {
  label: "HubSpot",
  connector: "hubspot",
  entity: "contacts",
  fields: { a: "jobTitle", b: "company", matchKey: "email" },
  sample: (n) => ({
    email: `matrix-${n}@example.com`,
    firstName: `First ${n}`,
    lastName: `Last ${n}`,
    jobTitle: `Title ${n}`,
    company: `Company ${n}`,
  }),
  refusedCreate: async (session) => {
    // An email HubSpot already has: one 409 CONFLICT for the whole batch/create, which the
    // connector splits so that only this record fails.
    const taken = await session.create({ email: `taken-${++counter}-${Date.now()}@example.com`, firstName: "Taken" });
    const email = session.read(taken)!.email;
    return { fields: { email, firstName: "Duplicate" }, message: /Contact already exists/ };
  },
  start,
};
