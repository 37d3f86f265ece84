import {
  createSalesforceFake,
  type FakeHttpRequest,
  type FakeHttpResponse,
  type LoopbackServer,
  outboundMessageXml,
  outboundNotificationId,
  type SalesforceFake,
  type StoredSalesforceRecord,
  salesforceFakeOAuthApp,
  salesforceHandlers,
  serveOnLoopback,
} from "@tandem/testkit";
import type { TwoWayVendor, VendorFields, VendorSession, VendorTransport, VendorWrite } from "../TwoWayVendor.ts";

/*
 * The Salesforce connector's `contacts` (sObject Contact) for the two-way scenario matrix, over
 * the sandbox's stateful Salesforce fake.
 *
 * Timing. Salesforce compares `If-Unmodified-Since` in whole seconds (HTTP dates have no
 * milliseconds), so a user's edit in the same second as the version the engine last read would
 * pass the connector's conditional write unseen: Salesforce itself cannot tell them apart. So a
 * user's edit or deletion waits, when it must, for the wall clock's next second after the record's
 * last change (`nextSecondAfter`): every mutation moves the record's modification time past every
 * earlier one at Salesforce's grain. The fake stays on the wall clock, which the engine's own
 * times (last write wins) are compared with: a clock run ahead instead would make a local edit
 * made just after a remote one look older.
 */

/** Normalized field -> Contact field (the connector's `contacts` mapping, its writable fields). */
const contactFields = {
  firstName: "FirstName",
  lastName: "LastName",
  email: "Email",
  phone: "Phone",
  accountId: "AccountId",
} as const;

const toSalesforce = (fields: VendorFields): Record<string, unknown> => {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fields)) {
    const wire = contactFields[name as keyof typeof contactFields];
    if (wire === undefined) throw new Error(`salesforce adapter: contacts have no writable field ${name}`);
    out[wire] = value;
  }
  return out;
};

const toNormalized = (record: StoredSalesforceRecord): VendorFields =>
  Object.fromEntries(Object.entries(contactFields).map(([name, wire]) => [name, record.fields[wire] ?? null]));

/**
 * Waits until the wall clock reaches `ms` (this scenario only: the others go on). Rare: most edits
 * come more than a second after the record's last change; one run of the matrix (56 scenarios)
 * waited 10 times, 4.4 s in all.
 */
const waitUntil = async (ms: number) => {
  for (let left = ms - Date.now(); left > 0; left = ms - Date.now()) {
    await new Promise((resolve) => setTimeout(resolve, left));
  }
};

const second = (ms: number) => Math.floor(ms / 1000);

const kindOf = (method: string): VendorWrite["kind"] | undefined =>
  method === "POST" ? "create" : method === "PATCH" ? "update" : method === "DELETE" ? "delete" : undefined;

/**
 * The write requests among a request to the fake and its answer, as the matrix counts them: every
 * one received, refused ones included (with no ids); the ids are those of the records written.
 */
const writesOf = (request: FakeHttpRequest, response: FakeHttpResponse): ReadonlyArray<VendorWrite> => {
  const method = request.method.toUpperCase();
  const path = request.url.pathname.replace(/^\/services\/data\/v\d+\.\d\//, "");
  if (path === request.url.pathname) return [];
  const ok = response.status < 300;
  const body = response.body;
  // sObject Collections: one request, many records, each succeeding or failing alone.
  if (path === "composite/sobjects") {
    const kind = kindOf(method);
    const results = ok && Array.isArray(body) ? (body as Array<{ id?: unknown; success?: unknown }>) : [];
    const ids = results.flatMap((r) => (r?.success === true && typeof r.id === "string" ? [r.id] : []));
    return kind === undefined ? [] : [{ kind, ids }];
  }
  // Composite: the connector's conditional updates, each a PATCH of sObject Rows, one request.
  if (path === "composite" && method === "POST") {
    const sent =
      (JSON.parse(request.body) as { compositeRequest?: Array<{ method: string; url: string; referenceId: string }> })
        .compositeRequest ?? [];
    const answers = ok
      ? ((body as { compositeResponse?: Array<{ referenceId: string; httpStatusCode: number }> }).compositeResponse ??
        [])
      : [];
    const byKind = new Map<VendorWrite["kind"], Array<string>>();
    for (const sub of sent) {
      const kind = kindOf(sub.method.toUpperCase());
      if (kind === undefined) continue;
      const ids = byKind.get(kind) ?? [];
      byKind.set(kind, ids);
      const answer = answers.find((a) => a.referenceId === sub.referenceId);
      if (answer !== undefined && answer.httpStatusCode < 300) {
        ids.push(decodeURIComponent(sub.url.split("?")[0]!.split("/").at(-1)!));
      }
    }
    return [...byKind].map(([kind, ids]) => ({ kind, ids }));
  }
  // sObject Rows: one record.
  const single = /^sobjects\/Contact(?:\/([^/]+))?$/.exec(path);
  const kind = kindOf(method);
  if (single === null || kind === undefined || (kind === "create") !== (single[1] === undefined)) return [];
  const id = kind === "create" ? (body as { id?: string } | undefined)?.id : single[1];
  return [{ kind, ids: ok && id !== undefined ? [id] : [] }];
};

let sessions = 0;

const start = async (transport: VendorTransport): Promise<VendorSession> => {
  const log: Array<VendorWrite> = [];
  let fake!: SalesforceFake;
  const recording = async (request: FakeHttpRequest) => {
    const response = await fake.handle(request);
    log.push(...writesOf(request, response));
    return response;
  };
  const make = (instanceUrl: string) => {
    fake = createSalesforceFake({ instanceUrl });
    return recording;
  };
  let served: LoopbackServer | undefined;
  if (transport === "loopback") served = await serveOnLoopback(make);
  else make(`https://twoway-${++sessions}.my.salesforce.test`);
  const { store } = fake;

  /** Before a user's change of `id`: the next whole second after the record's last change. */
  const nextSecondAfter = async (id: string) => {
    const record = store.get("Contact", id);
    if (record === undefined) return;
    await waitUntil((second(Math.max(record.LastModifiedDate, record.SystemModstamp)) + 1) * 1000);
  };
  const outcome = (what: string, result: ReturnType<typeof store.create>) => {
    if ("errors" in result) throw new Error(`salesforce adapter: ${what}: ${JSON.stringify(result.errors)}`);
    return result.record;
  };

  return {
    config: {
      instanceUrl: fake.instanceUrl,
      clientId: salesforceFakeOAuthApp.clientId,
      clientSecret: salesforceFakeOAuthApp.clientSecret,
      refreshToken: salesforceFakeOAuthApp.refreshToken,
      outboundMessageOrgId: fake.organizationId,
    },
    handlers: transport === "msw" ? salesforceHandlers({ ...fake, handle: recording }) : [],
    reset: () => {
      fake.reset();
      log.length = 0;
    },
    close: async () => {
      fake.close();
      await served?.close();
    },
    create: async (fields) => outcome("create", store.create("Contact", toSalesforce(fields))).Id,
    edit: async (id, fields) => {
      await nextSecondAfter(id);
      outcome(`edit ${id}`, store.update("Contact", id, toSalesforce(fields)));
    },
    remove: async (id) => {
      await nextSecondAfter(id);
      outcome(`remove ${id}`, store.delete("Contact", id));
    },
    read: (id) => {
      const record = store.get("Contact", id);
      return record === undefined || record.IsDeleted ? undefined : toNormalized(record);
    },
    liveIds: () => fake.live("Contact").map((r) => r.Id),
    writes: () => [...log],
    /*
     * Outbound Messages fire on create and update, never on delete (a workflow rule or a flow
     * sends them; neither runs on a deletion). What does reach a listener after a deletion is
     * a notification of the record's last change, delivered late (Salesforce retries for 24
     * hours): the connector then reads the record, finds it in the recycle bin, and deletes it.
     * So "delete" is that notification: the record as its last edit left it.
     */
    // Outbound Messages name no endpoint (their definition holds it) and carry no signature.
    notification: (id, kind, _endpointUrl) => {
      const stored = store.get("Contact", id);
      if (stored === undefined) throw new Error(`salesforce adapter: no Contact ${id}`);
      const record =
        kind === "delete"
          ? { ...stored, fields: { ...stored.fields }, IsDeleted: false, SystemModstamp: stored.LastModifiedDate }
          : { ...stored, fields: { ...stored.fields } };
      return {
        method: "POST",
        headers: { "content-type": "text/xml; charset=utf-8", soapaction: '""' },
        body: outboundMessageXml({
          organizationId: fake.organizationId,
          instanceUrl: fake.instanceUrl,
          notifications: [{ id: outboundNotificationId(), record }],
        }),
      };
    },
  };
};

let refused = 0;

export const salesforceVendor: TwoWayVendor = {
  label: "Salesforce",
  connector: "salesforce",
  entity: "contacts",
  fields: { a: "firstName", b: "phone", matchKey: "email" },
  sample: (n) => ({
    firstName: `First${n}`,
    lastName: `Last${n}`,
    email: `person${n}@twoway.example.com`,
    phone: `+1 555 ${String(n).padStart(7, "0")}`,
  }),
  // Tandem's schema takes any string as an email; Salesforce refuses a malformed one, per record.
  refusedCreate: async () => ({
    fields: { firstName: "Refused", lastName: `Refused${++refused}`, email: `refused${refused}@nowhere` },
    message: /INVALID_EMAIL_ADDRESS|invalid email address/,
  }),
  start,
};
