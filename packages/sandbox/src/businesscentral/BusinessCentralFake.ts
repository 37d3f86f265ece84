import { type FakeClock, seededRandom, systemClock } from "../hubspot/FakeClock.ts";
import type { FakeHttpRequest, FakeHttpResponse } from "../hubspot/HubSpotApi.ts";
import {
  type BusinessCentralApiState,
  type BusinessCentralApp,
  type BusinessCentralNotification,
  type BusinessCentralSubscription,
  handleBusinessCentralRequest,
  handleBusinessCentralTokenRequest,
  queueBusinessCentralNotifications,
} from "./BusinessCentralApi.ts";
import {
  type BusinessCentralFakeKnobs,
  type BusinessCentralFault,
  defaultBusinessCentralKnobs,
} from "./BusinessCentralFaults.ts";
import {
  type BusinessCentralEntitySet,
  type BusinessCentralSeedOptions,
  type BusinessCentralStore,
  createBusinessCentralStore,
  type StoredBusinessCentralRecord,
} from "./BusinessCentralStore.ts";

/** The tenant, environment and company the fake serves unless told otherwise. */
export const businessCentralFakeIds = {
  tenantId: "7b6c9e1d-3f2a-4c5b-8d9e-0a1b2c3d4e5f",
  environment: "production",
  companyId: "0c6ac6e2-6f5e-ee11-8df0-6045bdc8c1a1",
} as const;

/** The app registration the fake's token endpoint knows unless told otherwise. */
export const businessCentralFakeApp: BusinessCentralApp = {
  clientId: "3e1d8f2a-bc00-4a11-9c8e-fakeclient001",
  clientSecret: "fake-bc-client-secret",
};

export interface BusinessCentralFakeOptions {
  /** Origin of the API. Default https://api.businesscentral.dynamics.com. */
  readonly baseUrl?: string;
  /** Origin of the identity platform. Default https://login.microsoftonline.com. */
  readonly authorityUrl?: string;
  readonly tenantId?: string;
  readonly environment?: string;
  readonly companyId?: string;
  /** App registrations the token endpoint accepts. Default [businessCentralFakeApp]. */
  readonly apps?: ReadonlyArray<BusinessCentralApp>;
  /** Lifetime of issued tokens. Default 3,599 s (what Microsoft answers). */
  readonly accessTokenTtlSeconds?: number;
  /** Default the wall clock; pass createManualClock() to control time. */
  readonly clock?: FakeClock;
  /** Seed of the random source behind random faults. Default 1. */
  readonly seed?: number;
  readonly knobs?: Partial<BusinessCentralFakeKnobs>;
  /** Sends handshakes and notifications. Default globalThis.fetch (MSW intercepts it). */
  readonly fetch?: typeof fetch;
}

/** One POST of notifications to a subscriber. */
export interface BusinessCentralDelivery {
  readonly subscriptionId: string;
  readonly status: number;
  readonly body: string;
  readonly notifications: ReadonlyArray<BusinessCentralNotification>;
}

/**
 * A stateful fake of Business Central API v2.0 (items, customers, subscriptions) and of the
 * Microsoft identity platform's client-credentials token endpoint. Serve it over loopback HTTP
 * (`serveOnLoopback`, API and token endpoint on one origin) or through MSW (the testkit's
 * `businessCentralHandlers(fake)`).
 */
export interface BusinessCentralFake {
  readonly baseUrl: string;
  readonly authorityUrl: string;
  readonly tenantId: string;
  readonly environment: string;
  readonly companyId: string;
  /** `{baseUrl}/v2.0/{tenant}/{environment}/api/v2.0/companies({companyId})`. */
  readonly companyUrl: string;
  readonly clock: FakeClock;
  readonly store: BusinessCentralStore;
  readonly knobs: BusinessCentralFakeKnobs;
  /**
   * Answers one request (the transport-independent entry point): `POST
   * {authorityUrl}/{tenant}/oauth2/v2.0/token` goes to the token endpoint, anything else to the API.
   */
  readonly handle: (request: FakeHttpRequest) => Promise<FakeHttpResponse>;
  /** App registrations (mutable: remove one to revoke it). */
  readonly apps: Array<BusinessCentralApp>;
  /** Expires every token issued so far (the next call with one answers 401). */
  readonly expireAccessTokens: () => void;
  /** Serves these faults to the next API calls, in order (the token endpoint is not affected). */
  readonly failNext: (...faults: ReadonlyArray<BusinessCentralFault>) => void;
  /** Requests received so far, token requests included (method, full URL, status; a $batch's operation count). */
  readonly requests: () => ReadonlyArray<{
    readonly method: string;
    readonly url: string;
    readonly status: number;
    readonly operations?: number;
  }>;
  readonly seedItems: (n: number, options?: BusinessCentralSeedOptions) => ReadonlyArray<StoredBusinessCentralRecord>;
  readonly seedCustomers: (
    n: number,
    options?: BusinessCentralSeedOptions,
  ) => ReadonlyArray<StoredBusinessCentralRecord>;
  readonly records: (entitySet: BusinessCentralEntitySet) => ReadonlyArray<StoredBusinessCentralRecord>;
  /** Live subscriptions. */
  readonly subscriptions: () => ReadonlyArray<BusinessCentralSubscription>;
  /** Notifications queued for the next delivery, per subscription. */
  readonly pendingNotifications: () => ReadonlyArray<BusinessCentralNotification>;
  /**
   * POSTs the queued notifications, one request per subscription, as BC does some 30 s after
   * changes. More than `knobs.collectionThreshold` queued become one `collection` notification.
   * 2xx clears the queue; 408/429/5xx keep it for a retry; any other status deletes the
   * subscription (BC's rule).
   */
  readonly deliverNotifications: () => Promise<ReadonlyArray<BusinessCentralDelivery>>;
  /** Clears data, subscriptions, knobs, counters and queued faults (keeps apps and issued tokens). */
  readonly reset: () => void;
}

/** `{tenant}/oauth2/v2.0/token` under the authority: the tenant segment names the directory. */
const tokenPath = /^\/([^/]+)\/oauth2\/v2\.0\/token$/;

/** The tenant of a token request (`POST {authorityUrl}/{tenant}/oauth2/v2.0/token`), or undefined. */
const tokenRequestTenant = (authorityUrl: string, request: FakeHttpRequest): string | undefined => {
  const { origin, pathname } = request.url;
  const authority = new URL(authorityUrl);
  if (request.method !== "POST" || origin !== authority.origin) return undefined;
  const prefix = authority.pathname.replace(/\/+$/, "");
  if (!pathname.startsWith(`${prefix}/`)) return undefined;
  const tenant = tokenPath.exec(pathname.slice(prefix.length))?.[1];
  return tenant === undefined ? undefined : decodeURIComponent(tenant);
};

/**
 * Creates a Business Central fake.
 *
 * @example
 * const fake = createBusinessCentralFake({ clock: createManualClock() });
 * fake.seedItems(250);
 * const server = setupServer(...businessCentralHandlers(fake)); // MSW, with the testkit's adapter
 * server.listen({ onUnhandledFrame: "error" });
 * fake.failNext({ kind: "rateLimit", retryAfterSeconds: 5 });
 */
export const createBusinessCentralFake = (options: BusinessCentralFakeOptions = {}): BusinessCentralFake => {
  const baseUrl = (options.baseUrl ?? "https://api.businesscentral.dynamics.com").replace(/\/+$/, "");
  const authorityUrl = (options.authorityUrl ?? "https://login.microsoftonline.com").replace(/\/+$/, "");
  const clock = options.clock ?? systemClock;
  const knobs = { ...defaultBusinessCentralKnobs(), ...options.knobs };
  const store = createBusinessCentralStore(clock);
  const state: BusinessCentralApiState = {
    store,
    clock,
    knobs,
    random: seededRandom(options.seed ?? 1),
    tenantId: options.tenantId ?? businessCentralFakeIds.tenantId,
    environment: options.environment ?? businessCentralFakeIds.environment,
    companyId: options.companyId ?? businessCentralFakeIds.companyId,
    apps: [...(options.apps ?? [businessCentralFakeApp])],
    issuedTokens: new Map(),
    accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? 3_599,
    queuedFaults: [],
    callTimes: [],
    requestLog: [],
    subscriptions: new Map(),
    pendingNotifications: new Map(),
    fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
  };
  store.onChange((change) => queueBusinessCentralNotifications(state, change));
  const handle = async (request: FakeHttpRequest): Promise<FakeHttpResponse> => {
    const tenant = tokenRequestTenant(authorityUrl, request);
    return tenant === undefined
      ? handleBusinessCentralRequest(state, request)
      : handleBusinessCentralTokenRequest(state, request, tenant);
  };

  const deliverNotifications = async (): Promise<ReadonlyArray<BusinessCentralDelivery>> => {
    const deliveries: Array<BusinessCentralDelivery> = [];
    for (const [subscriptionId, queued] of [...state.pendingNotifications]) {
      const subscription = state.subscriptions.get(subscriptionId);
      if (subscription === undefined || queued.length === 0) {
        state.pendingNotifications.delete(subscriptionId);
        continue;
      }
      const notifications: ReadonlyArray<BusinessCentralNotification> =
        queued.length > knobs.collectionThreshold
          ? [
              {
                ...queued[0]!,
                resource: subscription.resource.replace(/^\/?/, "/"),
                changeType: "collection",
                lastModifiedDateTime: queued.at(-1)!.lastModifiedDateTime,
              },
            ]
          : queued;
      const body = JSON.stringify({ value: notifications });
      let status: number;
      try {
        const response = await state.fetch(subscription.notificationUrl, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        status = response.status;
      } catch {
        status = 503;
      }
      deliveries.push({ subscriptionId, status, body, notifications });
      if (status >= 200 && status < 300) state.pendingNotifications.delete(subscriptionId);
      else if (status !== 408 && status !== 429 && status < 500) {
        state.subscriptions.delete(subscriptionId);
        state.pendingNotifications.delete(subscriptionId);
      }
    }
    return deliveries;
  };

  return {
    baseUrl,
    authorityUrl,
    tenantId: state.tenantId,
    environment: state.environment,
    companyId: state.companyId,
    companyUrl: `${baseUrl}/v2.0/${state.tenantId}/${state.environment}/api/v2.0/companies(${state.companyId})`,
    clock,
    store,
    knobs,
    handle,
    apps: state.apps,
    expireAccessTokens: () => {
      for (const issued of state.issuedTokens.values()) issued.expiresAt = clock.now() - 1;
    },
    failNext: (...faults) => {
      state.queuedFaults.push(...faults);
    },
    requests: () => [...state.requestLog],
    seedItems: (n, seedOptions) => store.seed("items", n, seedOptions),
    seedCustomers: (n, seedOptions) => store.seed("customers", n, seedOptions),
    records: (entitySet) => store.all(entitySet),
    subscriptions: () => [...state.subscriptions.values()],
    pendingNotifications: () => [...state.pendingNotifications.values()].flat(),
    deliverNotifications,
    reset: () => {
      store.clear();
      Object.assign(knobs, defaultBusinessCentralKnobs(), options.knobs);
      state.queuedFaults.length = 0;
      state.callTimes.length = 0;
      state.requestLog.length = 0;
      state.subscriptions.clear();
      state.pendingNotifications.clear();
    },
  };
};
