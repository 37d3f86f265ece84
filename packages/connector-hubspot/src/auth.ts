import { AuthExpired, type ConnectorContext, vendorCode } from "@tandem/connector-sdk";
import { Redacted, Schema } from "effect";
import type { HubSpotConfig } from "./config.ts";
import { TokenWire } from "./wire.ts";

/**
 * Access tokens obtained with a refresh token, per (base URL, client id, refresh token).
 * A process-local cache: losing it only costs one extra refresh.
 */
const tokens = new Map<string, { readonly token: string; readonly expiresAt: number }>();

/** Refreshes under way, so concurrent calls that find no token share one refresh. */
const refreshing = new Map<string, Promise<string>>();

/** Refresh this long before HubSpot's expiry, so a token never dies mid-request. */
const expiryMarginMs = 60_000;

const cacheKey = (config: HubSpotConfig) =>
  config.oauth === undefined
    ? undefined
    : `${config.baseUrl}\u0000${config.oauth.clientId}\u0000${Redacted.value(config.oauth.refreshToken)}`;

/** One refresh per connection at a time (see requestToken). */
const refresh = (ctx: ConnectorContext<HubSpotConfig>): Promise<string> => {
  const key = cacheKey(ctx.config)!;
  const pending = refreshing.get(key);
  if (pending !== undefined) return pending;
  const started = requestToken(ctx).finally(() => refreshing.delete(key));
  refreshing.set(key, started);
  return started;
};

/**
 * Trades the refresh token for an access token (`POST /oauth/v1/token`, form encoded).
 * HubSpot answers 400 (BAD_REFRESH_TOKEN, BAD_CLIENT_ID) when the grant is refused: the
 * connection needs re-authorizing, so that is AuthExpired.
 * See https://developers.hubspot.com/docs/api/oauth/tokens
 */
const requestToken = async (ctx: ConnectorContext<HubSpotConfig>): Promise<string> => {
  const oauth = ctx.config.oauth!;
  const response = await ctx.http.request({
    method: "POST",
    url: `${ctx.config.baseUrl}/oauth/v1/token`,
    body: new URLSearchParams({
      grant_type: "refresh_token",
      client_id: oauth.clientId,
      client_secret: Redacted.value(oauth.clientSecret),
      refresh_token: Redacted.value(oauth.refreshToken),
    }),
  });
  if (response.status !== 200) {
    const status = vendorCode((response.body as { status?: unknown } | undefined)?.status) ?? String(response.status);
    throw new AuthExpired({ message: `HubSpot refused the refresh token (${status})` });
  }
  const decoded = Schema.decodeUnknownEither(TokenWire)(response.body);
  if (decoded._tag === "Left")
    throw new AuthExpired({ message: "HubSpot's token endpoint answered an unexpected body" });
  tokens.set(cacheKey(ctx.config)!, {
    token: decoded.right.access_token,
    expiresAt: Date.now() + decoded.right.expires_in * 1000 - expiryMarginMs,
  });
  ctx.log.debug("hubspot: refreshed the OAuth access token", { expiresIn: decoded.right.expires_in });
  return decoded.right.access_token;
};

/**
 * The bearer token for a call: a cached OAuth access token (refreshed when expired),
 * else the configured `accessToken`, else a fresh OAuth token.
 */
export const accessToken = async (ctx: ConnectorContext<HubSpotConfig>): Promise<string> => {
  const key = cacheKey(ctx.config);
  const cached = key === undefined ? undefined : tokens.get(key);
  if (cached !== undefined && cached.expiresAt > Date.now()) return cached.token;
  if (cached === undefined && ctx.config.accessToken !== undefined) return Redacted.value(ctx.config.accessToken);
  return refresh(ctx);
};

/**
 * Called after a 401 with `token`: with OAuth, forget it and return a fresh token to retry
 * once; without OAuth there is nothing to refresh (undefined).
 */
export const renewAccessToken = async (
  ctx: ConnectorContext<HubSpotConfig>,
  token: string,
): Promise<string | undefined> => {
  if (ctx.config.oauth === undefined) return undefined;
  const key = cacheKey(ctx.config)!;
  const cached = tokens.get(key);
  // Another call may have refreshed already; use its token rather than refreshing twice.
  if (cached !== undefined && cached.token !== token && cached.expiresAt > Date.now()) return cached.token;
  return refresh(ctx);
};
