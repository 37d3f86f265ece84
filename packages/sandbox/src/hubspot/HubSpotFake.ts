import { type FakeClock, seededRandom, systemClock } from "./FakeClock.ts";
import {
  type FakeHttpRequest,
  type FakeHttpResponse,
  type HubSpotApiState,
  type HubSpotOAuthApp,
  handleHubSpotRequest,
} from "./HubSpotApi.ts";
import { defaultHubSpotKnobs, type HubSpotFakeKnobs, type HubSpotFault } from "./HubSpotFaults.ts";
import {
  createHubSpotStore,
  type HubSpotObjectType,
  type HubSpotStore,
  type SeedOptions,
  type StoredHubSpotObject,
} from "./HubSpotStore.ts";

/** The private app token the fake accepts unless told otherwise. */
export const hubSpotFakeToken = "pat-fake-hubspot-token";

/** The OAuth app the fake's token endpoint knows unless told otherwise. */
export const hubSpotFakeOAuthApp: HubSpotOAuthApp = {
  clientId: "fake-client-id",
  clientSecret: "fake-client-secret",
  refreshToken: "fake-refresh-token",
};

export interface HubSpotFakeOptions {
  /** Origin the fake answers on. Default https://api.hubapi.com. */
  readonly baseUrl?: string;
  /** Default the wall clock; pass createManualClock() to control time. */
  readonly clock?: FakeClock;
  /** Seed of the random source behind fault injection. Default 1. */
  readonly seed?: number;
  /** Private app tokens accepted. Default [hubSpotFakeToken]. */
  readonly tokens?: ReadonlyArray<string>;
  /** OAuth apps the token endpoint knows. Default [hubSpotFakeOAuthApp]. */
  readonly oauthApps?: ReadonlyArray<HubSpotOAuthApp>;
  /** Lifetime of issued OAuth access tokens. Default 1,800 s (HubSpot's). */
  readonly accessTokenTtlSeconds?: number;
  /** Initial knob values (see HubSpotFakeKnobs). */
  readonly knobs?: Partial<HubSpotFakeKnobs>;
}

export interface ChurnOptions {
  /** Per tick: objects whose properties change. Default 5. */
  readonly updates?: number;
  /** Per tick: new objects. Default 1. */
  readonly creates?: number;
  /** Per tick: objects archived. Default 0. */
  readonly archives?: number;
}

/**
 * A stateful fake of HubSpot CRM v3 (contacts and companies). Serve it over loopback HTTP
 * (`serveHubSpotFake`) or through MSW (the testkit's `hubSpotHandlers(fake)`).
 */
export interface HubSpotFake {
  readonly baseUrl: string;
  readonly clock: FakeClock;
  readonly store: HubSpotStore;
  /** Mutable fault and limit knobs. */
  readonly knobs: HubSpotFakeKnobs;
  /** Answers one request (the transport-independent entry point). */
  readonly handle: (request: FakeHttpRequest) => Promise<FakeHttpResponse>;
  /** Private app tokens accepted (mutable: delete one to simulate a revoked token). */
  readonly tokens: Set<string>;
  /** Expires every OAuth access token issued so far (the next call with one answers 401). */
  readonly expireAccessTokens: () => void;
  /**
   * Search stops returning this object (ids are unique across the fake's object types), as when
   * HubSpot's search index lags a write or drops an object: deltas miss its updates, while list,
   * get and batch read still serve it as it is. Until `showInSearch(id)` or `reset()`.
   */
  readonly hideFromSearch: (id: string) => void;
  /** Undoes `hideFromSearch(id)`. */
  readonly showInSearch: (id: string) => void;
  /** Serves these faults to the next calls, in order. */
  readonly failNext: (...faults: ReadonlyArray<HubSpotFault>) => void;
  /** Requests received so far (method, path with query, status). */
  readonly requests: () => ReadonlyArray<{ readonly method: string; readonly path: string; readonly status: number }>;
  readonly seedContacts: (n: number, options?: SeedOptions) => ReadonlyArray<StoredHubSpotObject>;
  readonly seedCompanies: (n: number, options?: SeedOptions) => ReadonlyArray<StoredHubSpotObject>;
  /** Live (not archived) objects of a type. */
  readonly live: (type: HubSpotObjectType) => ReadonlyArray<StoredHubSpotObject>;
  /** Archived objects of a type. */
  readonly archived: (type: HubSpotObjectType) => ReadonlyArray<StoredHubSpotObject>;
  /** One round of changes at the clock's now: updates, creations and archives of random objects. */
  readonly churn: (type: HubSpotObjectType, options?: ChurnOptions) => void;
  /** Runs `churn` every `everyMs` on a timer (for the demo); returns a stop function. */
  readonly startChurn: (type: HubSpotObjectType, everyMs: number, options?: ChurnOptions) => () => void;
  /** Clears data, knobs, counters and queued faults (keeps tokens and apps). */
  readonly reset: () => void;
  /** Releases hanging calls and churn timers. */
  readonly close: () => void;
}

/**
 * Creates a HubSpot fake.
 *
 * @example
 * const fake = createHubSpotFake({ baseUrl: "https://api.hubapi.com" });
 * fake.seedContacts(250);
 * const server = setupServer(...hubSpotHandlers(fake)); // MSW, with the testkit's adapter
 * server.listen({ onUnhandledFrame: "error" });
 * fake.knobs.serverErrorRate = 0.1;
 * fake.failNext({ kind: "rateLimit", retryAfterSeconds: 2 });
 */
export const createHubSpotFake = (options: HubSpotFakeOptions = {}): HubSpotFake => {
  const baseUrl = (options.baseUrl ?? "https://api.hubapi.com").replace(/\/+$/, "");
  const clock = options.clock ?? systemClock;
  const random = seededRandom(options.seed ?? 1);
  const store = createHubSpotStore(clock);
  const knobs = { ...defaultHubSpotKnobs(), ...options.knobs };
  const state: HubSpotApiState = {
    store,
    clock,
    knobs,
    random,
    privateAppTokens: new Set(options.tokens ?? [hubSpotFakeToken]),
    oauthApps: [...(options.oauthApps ?? [hubSpotFakeOAuthApp])],
    issuedTokens: new Map(),
    accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? 1_800,
    queuedFaults: [],
    callTimes: [],
    searchCallTimes: [],
    daily: { count: 0 },
    requestLog: [],
    hangs: new Set(),
    hiddenFromSearch: new Set(),
  };
  const timers = new Set<ReturnType<typeof setInterval>>();
  const handle = (request: FakeHttpRequest) => handleHubSpotRequest(state, request);

  const pick = <A>(items: ReadonlyArray<A>): A | undefined => items[Math.floor(random() * items.length)];

  const churn = (type: HubSpotObjectType, churnOptions: ChurnOptions = {}) => {
    const live = () => store.all(type).filter((o) => !o.archived);
    for (let i = 0; i < (churnOptions.updates ?? 5); i++) {
      const target = pick(live());
      if (target === undefined) break;
      const change =
        type === "contacts"
          ? { phone: `+1555${Math.floor(random() * 1e7)}`, lifecyclestage: pick(["lead", "opportunity", "customer"]) }
          : { city: pick(["Porto", "Hamburg", "Denver", "Kyoto"]), phone: `+1444${Math.floor(random() * 1e7)}` };
      store.update(type, target.id, change);
    }
    for (let i = 0; i < (churnOptions.creates ?? 1); i++) {
      const n = Math.floor(random() * 1e9);
      store.create(
        type,
        type === "contacts"
          ? { email: `new${n}@example.com`, firstname: "New", lastname: `Contact ${n}` }
          : { name: `New Co ${n}`, domain: `new${n}.example.com` },
      );
    }
    for (let i = 0; i < (churnOptions.archives ?? 0); i++) {
      const target = pick(live());
      if (target !== undefined) store.archive(type, target.id);
    }
  };

  return {
    baseUrl,
    clock,
    store,
    knobs,
    handle,
    tokens: state.privateAppTokens,
    expireAccessTokens: () => {
      for (const token of state.issuedTokens.keys()) state.issuedTokens.set(token, clock.now() - 1);
    },
    hideFromSearch: (id) => {
      state.hiddenFromSearch.add(id);
    },
    showInSearch: (id) => {
      state.hiddenFromSearch.delete(id);
    },
    failNext: (...faults) => {
      state.queuedFaults.push(...faults);
    },
    requests: () => [...state.requestLog],
    seedContacts: (n, seedOptions) => store.seed("contacts", n, seedOptions),
    seedCompanies: (n, seedOptions) => store.seed("companies", n, seedOptions),
    live: (type) => store.all(type).filter((o) => !o.archived),
    archived: (type) => store.all(type).filter((o) => o.archived),
    churn,
    startChurn: (type, everyMs, churnOptions) => {
      const timer = setInterval(() => churn(type, churnOptions), everyMs);
      timer.unref?.();
      timers.add(timer);
      return () => {
        clearInterval(timer);
        timers.delete(timer);
      };
    },
    reset: () => {
      store.clear();
      Object.assign(knobs, defaultHubSpotKnobs(), options.knobs);
      state.queuedFaults.length = 0;
      state.callTimes.length = 0;
      state.searchCallTimes.length = 0;
      state.daily.count = 0;
      state.requestLog.length = 0;
      state.issuedTokens.clear();
      state.hiddenFromSearch.clear();
    },
    close: () => {
      for (const release of [...state.hangs]) release();
      for (const timer of timers) clearInterval(timer);
      timers.clear();
    },
  };
};
