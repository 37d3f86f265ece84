/**
 * A stateful fake of "Acme CRM", a small generic vendor API, served over HTTP
 * by the testkit's MSW handlers (acmeHandlers). It is deliberately unremarkable: keyset paging,
 * an `updatedAfter` filter, an ids listing, get by id, writes, and rate-limit
 * headers, plus fault knobs for the cases a sync engine must survive.
 */

/** A contact as the Acme API sends it (wire format). */
export interface AcmeContactWire {
  id: string;
  firstName: string;
  lastName: string;
  email: string;
  lifecycleStage: string;
  updatedAt: string;
}

/** One request the fake answered, for assertions on paging and resume. */
export interface AcmeRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, string>;
}

/** Ways to make the fake misbehave. Each applies to `GET /contacts` pages unless said otherwise. */
export interface AcmeFaults {
  /** The next N matching requests answer with `status` (e.g. 503, 429). */
  failures: Array<{
    method?: string;
    path?: string;
    status: number;
    remaining: number;
    /** Matching requests to let through before failing. */
    skip: number;
    retryAfter?: string;
  }>;
  /** Page bodies are cut mid-JSON. */
  malformedJson: boolean;
  /** Records on pages have these fields replaced (wrong types, missing id...). Keyed by contact id. */
  corrupt: Map<string, Record<string, unknown>>;
  /** The first record of every page is sent twice. */
  duplicateInPage: boolean;
  /** Every page answers the same next cursor (a paging bug that never ends). */
  repeatCursor: boolean;
  /** `GET /contacts/:id` answers this id's previous version (a lagging replica). */
  staleGet: Set<string>;
  /** `GET /contacts/ids` answers no ids at all (a vendor outage that looks like "everything deleted"). */
  emptyIds: boolean;
  /** Sent as x-ratelimit-remaining / x-ratelimit-reset-ms on every response when set. */
  rateLimit: { remaining: number; resetMs: number } | undefined;
}

const START = Date.parse("2026-01-01T00:00:00.000Z");

/** The fake's state. Time is its own counter: each write moves it on by one second. */
export class AcmeCrm {
  readonly baseUrl: string;
  readonly token: string;
  contacts = new Map<string, AcmeContactWire>();
  history = new Map<string, Array<AcmeContactWire>>();
  requests: Array<AcmeRequest> = [];
  faults: AcmeFaults = AcmeCrm.noFaults();
  /** Called before each `GET /contacts` page is answered (to change data mid-run). */
  beforePage: ((pageIndex: number) => void) | undefined;
  now = START;
  #nextId = 1;
  #pages = 0;
  /** Ids in order, rebuilt lazily after creates and removals (paging 100k records stays cheap). */
  #sorted: Array<string> | undefined;

  constructor(options: { readonly baseUrl?: string; readonly token?: string } = {}) {
    this.baseUrl = options.baseUrl ?? "https://acme.test/api";
    this.token = options.token ?? "acme-secret-token";
  }

  static noFaults(): AcmeFaults {
    return {
      failures: [],
      malformedJson: false,
      corrupt: new Map(),
      duplicateInPage: false,
      repeatCursor: false,
      staleGet: new Set(),
      emptyIds: false,
      rateLimit: undefined,
    };
  }

  /** Empties the store, the request log and every fault. */
  reset(): void {
    this.contacts.clear();
    this.history.clear();
    this.requests = [];
    this.faults = AcmeCrm.noFaults();
    this.beforePage = undefined;
    this.now = START;
    this.#nextId = 1;
    this.#pages = 0;
    this.#sorted = undefined;
  }

  #sortedIds(): Array<string> {
    this.#sorted ??= [...this.contacts.keys()].sort();
    return this.#sorted;
  }

  /** Index of the first id greater than `after` (binary search). */
  #startAfter(after: string | undefined): number {
    const ids = this.#sortedIds();
    if (after === undefined) return 0;
    let lo = 0;
    let hi = ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ids[mid]! <= after) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #tick(): string {
    this.now += 1000;
    return new Date(this.now).toISOString();
  }

  /** Creates `n` contacts with ids c000001, c000002, ... (sortable). */
  seed(n: number): Array<AcmeContactWire> {
    const created: Array<AcmeContactWire> = [];
    for (let i = 0; i < n; i++) created.push(this.create({}));
    return created;
  }

  create(fields: Partial<Omit<AcmeContactWire, "updatedAt">>): AcmeContactWire {
    const n = this.#nextId++;
    const id = fields.id ?? `c${String(n).padStart(6, "0")}`;
    const contact: AcmeContactWire = {
      id,
      firstName: fields.firstName ?? `First${n}`,
      lastName: fields.lastName ?? `Last${n}`,
      email: fields.email ?? `contact${n}@acme.test`,
      lifecycleStage: fields.lifecycleStage ?? "lead",
      updatedAt: this.#tick(),
    };
    this.contacts.set(id, contact);
    this.#sorted = undefined;
    return contact;
  }

  update(id: string, changes: Partial<Omit<AcmeContactWire, "id" | "updatedAt">>): AcmeContactWire | undefined {
    const current = this.contacts.get(id);
    if (current === undefined) return undefined;
    this.history.set(id, [...(this.history.get(id) ?? []), current]);
    const next = { ...current, ...changes, id, updatedAt: this.#tick() };
    this.contacts.set(id, next);
    return next;
  }

  remove(id: string): boolean {
    this.#tick();
    this.#sorted = undefined;
    return this.contacts.delete(id);
  }

  /** Requests to a path (exact match of the path after the base URL). */
  requestsTo(path: string, method = "GET"): Array<AcmeRequest> {
    return this.requests.filter((r) => r.path === path && r.method === method);
  }

  /** Queues `times` failures with `status` for requests matching method/path prefix. */
  fail(
    status: number,
    options: { method?: string; path?: string; times?: number; after?: number; retryAfter?: string } = {},
  ) {
    this.faults.failures.push({
      status,
      remaining: options.times ?? 1,
      skip: options.after ?? 0,
      ...(options.method !== undefined ? { method: options.method } : {}),
      ...(options.path !== undefined ? { path: options.path } : {}),
      ...(options.retryAfter !== undefined ? { retryAfter: options.retryAfter } : {}),
    });
  }

  /** Takes the first queued failure matching this request, if any. */
  takeFailure(method: string, path: string) {
    const f = this.faults.failures.find(
      (x) =>
        x.remaining > 0 && (x.method === undefined || x.method === method) && (x.path === undefined || path === x.path),
    );
    if (f === undefined) return undefined;
    if (f.skip > 0) {
      f.skip--;
      return undefined;
    }
    f.remaining--;
    return f;
  }

  /** One page of contacts ordered by id, after `cursor`, updated at or after `updatedAfter`. */
  page(options: { limit: number; cursor?: string; updatedAfter?: string }): {
    data: Array<Record<string, unknown>>;
    nextCursor: string | null;
  } {
    this.beforePage?.(this.#pages++);
    const since = options.updatedAfter === undefined ? undefined : Date.parse(options.updatedAfter);
    const after = options.cursor === undefined ? undefined : Buffer.from(options.cursor, "base64url").toString();
    const ids = this.#sortedIds();
    const slice: Array<AcmeContactWire> = [];
    let more = false;
    for (let i = this.#startAfter(after); i < ids.length; i++) {
      const c = this.contacts.get(ids[i]!)!;
      if (since !== undefined && Date.parse(c.updatedAt) < since) continue;
      if (slice.length === options.limit) {
        more = true;
        break;
      }
      slice.push(c);
    }
    const last = slice.at(-1);
    let nextCursor = more && last !== undefined ? Buffer.from(last.id).toString("base64url") : null;
    if (this.faults.repeatCursor) nextCursor = Buffer.from("c000000").toString("base64url");
    // `{ id: undefined }` in a corruption drops the key from the JSON entirely.
    let data: Array<Record<string, unknown>> = slice.map((c) => ({ ...c, ...this.faults.corrupt.get(c.id) }));
    if (this.faults.duplicateInPage && data[0] !== undefined) data = [data[0], ...data];
    return { data, nextCursor };
  }

  ids(options: { limit: number; cursor?: string }): { ids: Array<string>; nextCursor: string | null } {
    if (this.faults.emptyIds) return { ids: [], nextCursor: null };
    const ids = this.#sortedIds();
    const start = this.#startAfter(options.cursor);
    const slice = ids.slice(start, start + options.limit);
    return { ids: slice, nextCursor: start + options.limit < ids.length ? (slice.at(-1) ?? null) : null };
  }

  get(id: string): AcmeContactWire | undefined {
    if (this.faults.staleGet.has(id)) {
      const previous = this.history.get(id)?.at(-1);
      if (previous !== undefined) return previous;
    }
    return this.contacts.get(id);
  }
}
