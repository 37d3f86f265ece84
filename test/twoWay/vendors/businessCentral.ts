import {
  type BusinessCentralFake,
  type BusinessCentralValue,
  businessCentralFakeApp,
  businessCentralFakeIds,
  businessCentralHandlers,
  businessCentralNotification,
  businessCentralResource,
  createBusinessCentralFake,
  type FakeClock,
  type FakeHttpRequest,
  serveOnLoopback,
} from "@tandem/testkit";
import type { TwoWayVendor, VendorFields, VendorSession, VendorTransport, VendorWrite } from "../TwoWayVendor.ts";

/*
 * The Business Central fake (items) as a two-way matrix vendor. Its clock is the wall clock, made
 * strictly increasing so that every change is later than the one before it. BC's notifications
 * carry no signature: the subscription's `clientState`, echoed in each one, is their proof.
 */

const clientState = "two-way-matrix-client-state";
/** Sessions run side by side over MSW: each answers on origins of its own. */
let sessions = 0;
/** BC sends no event id; the subscription's id is part of the connector's derived one. */
const subscriptionId = "5e0a2f7d9c2b4c1a8e3f6a7b9c0d1e2f";

/** The item properties the matrix reads and writes; text ones are "" when empty (the connector's null). */
const textFields = ["number", "displayName", "displayName2", "gtin", "baseUnitOfMeasureCode"] as const;
const otherFields = ["type", "blocked", "unitPrice", "unitCost", "inventory"] as const;

const toProperties = (fields: VendorFields): Record<string, BusinessCentralValue> =>
  Object.fromEntries(
    Object.entries(fields).map(([field, value]) => {
      if (
        !(textFields as ReadonlyArray<string>).includes(field) &&
        !(otherFields as ReadonlyArray<string>).includes(field)
      )
        throw new Error(`the Business Central matrix adapter knows no item field ${field}`);
      return [field, value === null || value === undefined ? "" : (value as BusinessCentralValue)];
    }),
  );

const fromProperties = (stored: Record<string, BusinessCentralValue>): VendorFields => ({
  ...Object.fromEntries(textFields.map((f) => [f, stored[f] === undefined || stored[f] === "" ? null : stored[f]])),
  ...Object.fromEntries(otherFields.map((f) => [f, stored[f]])),
});

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

/** `.../items` -> create, `.../items(<id>)` -> the id; anything else is no item write. */
const itemPath = /\/items(?:\(\s*'?([0-9a-fA-F-]{36})'?\s*\))?$/;

const kindOf = { POST: "create", PATCH: "update", DELETE: "delete" } as const;

interface ItemOperation {
  readonly kind: VendorWrite["kind"];
  /** The id written, or undefined when the operation wrote nothing. */
  readonly written: string | undefined;
}

/** One item operation (a request alone, or one of a `$batch`) and what it wrote, from its answer. */
const itemOperation = (method: string, pathname: string, status: number, body: unknown): ItemOperation | undefined => {
  const kind = kindOf[method.toUpperCase() as keyof typeof kindOf];
  const match = itemPath.exec(pathname);
  if (kind === undefined || match === null || (kind === "create") !== (match[1] === undefined)) return undefined;
  const ok = status >= 200 && status < 300;
  const id = kind === "create" ? (body as { id?: string } | undefined)?.id : match[1]!.toLowerCase();
  return { kind, written: ok ? id : undefined };
};

/** What a request to the fake wrote: one write per kind of operation it carried (a `$batch` is one request). */
const writesOf = (request: FakeHttpRequest, status: number, body: unknown): ReadonlyArray<VendorWrite> => {
  const operations: Array<ItemOperation> = [];
  if (request.method.toUpperCase() === "POST" && request.url.pathname.endsWith("/$batch")) {
    const sent = (JSON.parse(request.body) as { requests: Array<{ id: string; method: string; url: string }> })
      .requests;
    const answers = new Map(
      (
        (body as { responses?: Array<{ id: string; status: number; body?: unknown }> } | undefined)?.responses ?? []
      ).map((r) => [r.id, r]),
    );
    for (const op of sent) {
      const answer = answers.get(op.id);
      const operation = itemOperation(
        op.method,
        new URL(op.url, request.url).pathname,
        answer?.status ?? status,
        answer?.body,
      );
      if (operation !== undefined) operations.push(operation);
    }
  } else {
    const operation = itemOperation(request.method, request.url.pathname, status, body);
    if (operation !== undefined) operations.push(operation);
  }
  const kinds = [...new Set(operations.map((o) => o.kind))];
  return kinds.map((kind) => ({
    kind,
    ids: operations.filter((o) => o.kind === kind && o.written !== undefined).map((o) => o.written!),
  }));
};

/** The fake, with every item write request it answers logged for the matrix. */
const withWriteLog = (fake: BusinessCentralFake, log: Array<VendorWrite>): BusinessCentralFake => ({
  ...fake,
  handle: async (request) => {
    const response = await fake.handle(request);
    log.push(...writesOf(request, response.status, response.body));
    return response;
  },
});

const start = async (transport: VendorTransport): Promise<VendorSession> => {
  const writes: Array<VendorWrite> = [];
  const clock = increasingClock();
  let fake!: BusinessCentralFake;
  let handlers: VendorSession["handlers"] = [];
  let close: () => Promise<void>;
  if (transport === "msw") {
    const n = ++sessions;
    fake = createBusinessCentralFake({
      baseUrl: `https://bc-${n}.twoway.test`,
      authorityUrl: `https://login-${n}.twoway.test`,
      clock,
    });
    handlers = businessCentralHandlers(withWriteLog(fake, writes));
    close = async () => {};
  } else {
    const served = await serveOnLoopback((url) => {
      fake = createBusinessCentralFake({ baseUrl: url, authorityUrl: url, clock });
      return withWriteLog(fake, writes).handle;
    });
    close = served.close;
  }
  // When each item last changed (deleted included): the time BC's notification about it carries.
  const changedAt = new Map<string, number>();
  fake.store.onChange((change) => {
    if (change.entitySet === "items") changedAt.set(change.id, change.at);
  });
  const succeed = (outcome: ReturnType<BusinessCentralFake["store"]["create"]>) => {
    if ("failure" in outcome) throw new Error(`Business Central refused: ${outcome.failure.message}`);
    return outcome.record;
  };
  return {
    config: {
      baseUrl: fake.baseUrl,
      authorityUrl: fake.authorityUrl,
      ...businessCentralFakeIds,
      clientId: businessCentralFakeApp.clientId,
      clientSecret: businessCentralFakeApp.clientSecret,
      webhookClientState: clientState,
      // No request budget in the way of the matrix's bursts.
      requestsPerSecond: 10_000,
    },
    handlers,
    reset: () => {
      fake.reset();
      writes.length = 0;
      changedAt.clear();
    },
    close,
    create: async (fields) => succeed(fake.store.create("items", toProperties(fields))).id,
    edit: async (id, fields) => {
      succeed(fake.store.update("items", id, toProperties(fields)));
    },
    remove: async (id) => {
      if (!fake.store.remove("items", id)) throw new Error(`Business Central has no item ${id}`);
    },
    read: (id) => {
      const stored = fake.store.get("items", id);
      return stored === undefined ? undefined : fromProperties(stored.fields);
    },
    liveIds: () => fake.records("items").map((r) => r.id),
    writes: () => [...writes],
    // BC signs nothing: the endpoint's URL is not part of the notification.
    notification: (id, kind) => {
      const notification = businessCentralNotification({
        subscriptionId,
        clientState,
        resource: businessCentralResource(fake.companyId, "items", id),
        changeType: kind === "delete" ? "deleted" : "updated",
        lastModifiedDateTime: new Date(changedAt.get(id) ?? clock.now()).toISOString(),
      });
      return {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ value: [notification] }),
      };
    },
  };
};

let counter = 0;

export const businessCentralVendor: TwoWayVendor = {
  label: "Business Central",
  connector: "erp",
  entity: "items",
  fields: { a: "displayName", b: "displayName2", matchKey: "number" },
  sample: (n) => ({
    number: `MX-${String(n).padStart(6, "0")}`,
    displayName: `Matrix item ${n}`,
    displayName2: `Variant ${n}`,
    unitPrice: n + 0.5,
  }),
  refusedCreate: async (session) => {
    // A number BC already has: that operation of the $batch answers 400
    // Internal_EntityWithSameKeyExists, the others are created.
    const taken = await session.create({
      number: `TAKEN-${++counter}-${Date.now() % 1_000_000}`,
      displayName: "Taken",
    });
    const number = session.read(taken)!.number;
    return { fields: { number, displayName: "Duplicate" }, message: /already exists/ };
  },
  start,
};
