import { Cause, Clock, Effect, Exit, Option, Redacted } from "effect";
import {
  type AccessGrant,
  type AnyConnector,
  AuthExpired,
  type ConnectorError,
  type ConnectorHttp,
  type ConnectorLogger,
} from "./Connector.ts";
import { callConnector } from "./callConnector.ts";

/** Where a connection's refresh state lives: the engine's encrypted column, or memory. */
export interface RefreshStateStore {
  readonly load: Effect.Effect<Redacted.Redacted<string> | undefined>;
  readonly save: (state: Redacted.Redacted<string>) => Effect.Effect<void>;
}

/** One connection's access grant: cached, renewed on expiry or refusal, one request at a time. */
export interface TokenSource {
  /** The cached grant while it is fresh, else a new one. */
  readonly current: Effect.Effect<AccessGrant, ConnectorError>;
  /** After `refused` was answered 401: the grant another caller obtained meanwhile, or a new one. */
  readonly renew: (refused: AccessGrant) => Effect.Effect<AccessGrant, ConnectorError>;
  /** A new grant whatever is cached (a credential check). */
  readonly refresh: Effect.Effect<AccessGrant, ConnectorError>;
  /**
   * Marks the cached grant stale, so the next call obtains a new one. Fails with the vendor's
   * refusal instead when the last attempt to obtain a grant was refused: asking again cannot help.
   */
  readonly forget: Effect.Effect<void, AuthExpired>;
}

/** Renew this long before a stated expiry (at most half the lifetime), so a token never dies mid-request. */
const expiryMarginMs = 5 * 60_000;

/**
 * A token source over `obtain` (given the grant being replaced). Concurrent callers share one
 * request: a caller that waited while another obtained a grant takes that outcome (the grant, or
 * the refusal) instead of asking the vendor again.
 */
export const makeTokenSource = (
  obtain: (previous: AccessGrant | undefined) => Effect.Effect<AccessGrant, ConnectorError>,
): Effect.Effect<TokenSource> =>
  Effect.map(Effect.makeSemaphore(1), (lock) => {
    let cached: { readonly grant: AccessGrant; freshUntil: number } | undefined;
    /** Counts settled requests, so a waiter can tell that one settled while it waited. */
    let settled = 0;
    let last: Exit.Exit<AccessGrant, ConnectorError> | undefined;

    const freshGrant = (now: number) => (cached !== undefined && cached.freshUntil > now ? cached.grant : undefined);

    const remember = (exit: Exit.Exit<AccessGrant, ConnectorError>) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        settled++;
        last = exit;
        if (Exit.isFailure(exit)) return;
        const lifetime = exit.value.expiresInMs;
        const margin = lifetime === undefined ? 0 : Math.min(expiryMarginMs, lifetime / 2);
        cached = {
          grant: exit.value,
          freshUntil: lifetime === undefined ? Number.POSITIVE_INFINITY : now + lifetime - margin,
        };
      });

    /** A grant other than `stale` (undefined: none is cached yet). */
    const replace = (stale: AccessGrant | undefined) =>
      Effect.suspend(() => {
        const seen = settled;
        return lock.withPermits(1)(
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            if (settled !== seen && last !== undefined) return last;
            const fresh = freshGrant(now);
            if (fresh !== undefined && fresh !== stale) return Effect.succeed(fresh);
            return obtain(cached?.grant ?? stale).pipe(Effect.exit, Effect.tap(remember), Effect.flatten);
          }),
        );
      });

    return {
      current: Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const fresh = freshGrant(now);
        return fresh !== undefined ? Effect.succeed(fresh) : replace(cached?.grant);
      }),
      renew: replace,
      refresh: Effect.suspend(() => replace(cached?.grant)),
      forget: Effect.suspend(() => {
        const refusal = last !== undefined && Exit.isFailure(last) ? Cause.failureOption(last.cause) : Option.none();
        if (Option.isSome(refusal) && refusal.value._tag === "AuthExpired") return Effect.fail(refusal.value);
        if (cached !== undefined) cached.freshUntil = Number.NEGATIVE_INFINITY;
        return Effect.void;
      }),
    } satisfies TokenSource;
  });

/** Refresh state kept in memory only: a context without the engine (the conformance suite, a script). */
export const memoryRefreshState = (): RefreshStateStore => {
  let state: Redacted.Redacted<string> | undefined;
  return {
    load: Effect.sync(() => state),
    save: (next) =>
      Effect.sync(() => {
        state = next;
      }),
  };
};

/** What calling a connector's `auth` hook needs besides the connection's config. */
export interface GrantRequestOptions {
  /** Sends no access token; the engine's egress policy applies. */
  readonly http: ConnectorHttp;
  readonly log: ConnectorLogger;
  readonly refreshState: RefreshStateStore;
}

/**
 * Calls the connector's `auth` hook with the stored refresh state, and stores the refresh state
 * the grant rotated. A refusal becomes an `AuthExpired` that says what to do about it (the
 * connector's message names the vendor's reason; no secret is in either).
 */
export const requestGrant =
  (connector: AnyConnector, config: unknown, options: GrantRequestOptions) =>
  (previous: AccessGrant | undefined): Effect.Effect<AccessGrant, ConnectorError> =>
    Effect.gen(function* () {
      const auth = connector.auth;
      if (auth === undefined) return yield* Effect.die(new TypeError(`connector "${connector.name}" has no auth hook`));
      const refreshState = yield* options.refreshState.load;
      const grant = yield* callConnector(() =>
        auth({ config, refreshState, previous, http: options.http, log: options.log }),
      ).pipe(
        Effect.mapError((e) =>
          e._tag === "AuthExpired"
            ? new AuthExpired({
                message: `${connector.name} could not obtain an access token: ${e.message}. The connection's credentials must be renewed (update the connection's config).`,
              })
            : e,
        ),
      );
      if (!Redacted.isRedacted(grant?.accessToken) || typeof Redacted.value(grant.accessToken) !== "string") {
        return yield* Effect.die(
          new TypeError(`connector "${connector.name}": auth must return { accessToken: Redacted<string> }`),
        );
      }
      const rotated = grant.refreshState;
      if (
        rotated !== undefined &&
        (refreshState === undefined || Redacted.value(rotated) !== Redacted.value(refreshState))
      ) {
        yield* options.refreshState.save(rotated);
      }
      return grant;
    });
