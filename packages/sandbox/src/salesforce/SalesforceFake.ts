import { type FakeClock, seededRandom, systemClock } from "../hubspot/FakeClock.ts";
import type { FakeHttpRequest, FakeHttpResponse } from "../hubspot/HubSpotApi.ts";
import {
  handleSalesforceRequest,
  type SalesforceApiState,
  type SalesforceOAuthApp,
  type SalesforceRequestLogEntry,
} from "./SalesforceApi.ts";
import {
  defaultSalesforceKnobs,
  type SalesforceFakeKnobs,
  type SalesforceFault,
  type SalesforceTokenFault,
} from "./SalesforceFaults.ts";
import {
  createSalesforceStore,
  type SalesforceObjectType,
  type SalesforceSeedOptions,
  type SalesforceStore,
  type StoredSalesforceRecord,
} from "./SalesforceStore.ts";

/** The connected app and refresh token the fake's token endpoint knows unless told otherwise. */
export const salesforceFakeOAuthApp: SalesforceOAuthApp = {
  clientId: "3MVG9fake.consumer.key",
  clientSecret: "fake-consumer-secret",
  refreshToken: "5Aep861fake.refresh.token",
};

/** The fake org's id (18 characters), as token responses and outbound messages carry it. */
export const salesforceFakeOrgId = "00D5g000004XyZaEAK";

export interface SalesforceFakeOptions {
  /** The org's My Domain origin the API is served on. Default https://acme.my.salesforce.test. */
  readonly instanceUrl?: string;
  /**
   * Where `POST /services/oauth2/token` is served as well (login.salesforce.com, test.salesforce.com).
   * The instance URL always serves it too, as My Domain does. Default: the instance URL only.
   */
  readonly loginUrl?: string;
  /** Default the wall clock; pass createManualClock() to control time. */
  readonly clock?: FakeClock;
  /** Seed of the random source behind fault injection. Default 1. */
  readonly seed?: number;
  readonly oauthApps?: ReadonlyArray<SalesforceOAuthApp>;
  readonly organizationId?: string;
  readonly knobs?: Partial<SalesforceFakeKnobs>;
}

/**
 * A stateful fake of Salesforce's REST API (Contact, Account): SOQL query/queryAll with
 * `nextRecordsUrl` paging, sObject CRUD, the delete log, the OAuth refresh-token grant, faults
 * and the API usage header. Serve it over loopback HTTP (`serveOnLoopback`) or through MSW (the
 * testkit's `salesforceHandlers(fake)`).
 */
export interface SalesforceFake {
  readonly instanceUrl: string;
  readonly loginUrl: string;
  readonly organizationId: string;
  readonly clock: FakeClock;
  readonly store: SalesforceStore;
  readonly knobs: SalesforceFakeKnobs;
  /** Answers one request (the transport-independent entry point), the token endpoint included. */
  readonly handle: (request: FakeHttpRequest) => Promise<FakeHttpResponse>;
  /** Invalidates every access token issued so far: the next call with one answers 401 INVALID_SESSION_ID. */
  readonly expireSessions: () => void;
  /** Serves these faults to the next API calls, in order (the token endpoint excepted). */
  readonly failNext: (...faults: ReadonlyArray<SalesforceFault>) => void;
  /** Serves these faults to the next token requests, in order. */
  readonly failNextTokenRequest: (...faults: ReadonlyArray<SalesforceTokenFault>) => void;
  /** Requests received so far (method, path with query, status, decoded SOQL). */
  readonly requests: () => ReadonlyArray<SalesforceRequestLogEntry>;
  /** API calls counted toward the org's limit (reported in `Sforce-Limit-Info`). */
  readonly apiUsage: () => number;
  readonly seedContacts: (n: number, options?: SalesforceSeedOptions) => ReadonlyArray<StoredSalesforceRecord>;
  readonly seedAccounts: (n: number, options?: SalesforceSeedOptions) => ReadonlyArray<StoredSalesforceRecord>;
  /** Records of a type not in the recycle bin. */
  readonly live: (type: SalesforceObjectType) => ReadonlyArray<StoredSalesforceRecord>;
  /**
   * Clears data, knobs, counters, open query locators and queued faults. Keeps the OAuth apps and
   * the sessions issued, so a connector's cached access token stays valid, as a real org's would.
   */
  readonly reset: () => void;
  /** Releases hanging calls. */
  readonly close: () => void;
}

/**
 * Creates a Salesforce fake.
 *
 * @example
 * const clock = createManualClock();
 * const fake = createSalesforceFake({ instanceUrl: "https://acme.my.salesforce.test", clock });
 * fake.seedContacts(2_500);
 * const server = setupServer(...salesforceHandlers(fake)); // MSW, with the testkit's adapter
 * server.listen({ onUnhandledFrame: "error" });
 * fake.failNext({ kind: "requestLimit" }); // 403 REQUEST_LIMIT_EXCEEDED
 * fake.expireSessions(); // 401 INVALID_SESSION_ID until the client refreshes
 */
export const createSalesforceFake = (options: SalesforceFakeOptions = {}): SalesforceFake => {
  const instanceUrl = (options.instanceUrl ?? "https://acme.my.salesforce.test").replace(/\/+$/, "");
  const loginUrl = (options.loginUrl ?? instanceUrl).replace(/\/+$/, "");
  const clock = options.clock ?? systemClock;
  const store = createSalesforceStore(clock);
  const knobs = { ...defaultSalesforceKnobs(), ...options.knobs };
  const organizationId = options.organizationId ?? salesforceFakeOrgId;
  const state: SalesforceApiState = {
    instanceUrl,
    loginUrl,
    organizationId,
    store,
    clock,
    knobs,
    random: seededRandom(options.seed ?? 1),
    oauthApps: [...(options.oauthApps ?? [salesforceFakeOAuthApp])],
    sessions: new Map(),
    queuedFaults: [],
    queuedTokenFaults: [],
    locators: new Map(),
    counters: { apiUsage: 0, locators: 0 },
    requestLog: [],
    hangs: new Set(),
  };
  const handle = (request: FakeHttpRequest) => handleSalesforceRequest(state, request);
  const live = (type: SalesforceObjectType) => store.all(type).filter((r) => !r.IsDeleted);
  return {
    instanceUrl,
    loginUrl,
    organizationId,
    clock,
    store,
    knobs,
    handle,
    expireSessions: () => {
      for (const token of state.sessions.keys()) state.sessions.set(token, false);
    },
    failNext: (...faults) => {
      state.queuedFaults.push(...faults);
    },
    failNextTokenRequest: (...faults) => {
      state.queuedTokenFaults.push(...faults);
    },
    requests: () => [...state.requestLog],
    apiUsage: () => state.counters.apiUsage,
    seedContacts: (n, seedOptions) => store.seed("Contact", n, seedOptions),
    seedAccounts: (n, seedOptions) => store.seed("Account", n, seedOptions),
    live,
    reset: () => {
      store.clear();
      Object.assign(knobs, defaultSalesforceKnobs(), options.knobs);
      state.queuedFaults.length = 0;
      state.queuedTokenFaults.length = 0;
      state.locators.clear();
      state.counters.apiUsage = 0;
      state.requestLog.length = 0;
    },
    close: () => {
      for (const release of [...state.hangs]) release();
    },
  };
};
