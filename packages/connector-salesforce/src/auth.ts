import { createHash } from "node:crypto";
import { AuthExpired, type ConnectorContext, vendorCode } from "@tandem/connector-sdk";
import { Redacted, Schema } from "effect";
import type { SalesforceConfig } from "./config.ts";
import { OAuthErrorWire, TokenWire } from "./wire.ts";

/** An access token and the instance it is valid on (the token response's `instance_url`). */
export interface SalesforceSession {
  readonly accessToken: string;
  readonly instanceUrl: string;
}

/**
 * Sessions per (token endpoint, client id, refresh token). A process-local cache: losing it
 * costs one refresh. Salesforce gives no expiry, so a session is kept until a 401.
 */
const sessions = new Map<string, SalesforceSession>();

/** Refreshes under way, so concurrent calls that find no session share one refresh. */
const refreshing = new Map<string, Promise<SalesforceSession>>();

const tokenOrigin = (config: SalesforceConfig) => (config.loginUrl ?? config.instanceUrl).replace(/\/+$/, "");

/** One session per org login and refresh token; the token itself is kept out of the key (a digest). */
const cacheKey = (config: SalesforceConfig) =>
  `${tokenOrigin(config)}\u0000${config.clientId}\u0000${createHash("sha256").update(Redacted.value(config.refreshToken)).digest("hex")}`;

/**
 * Trades the refresh token for a session (`POST /services/oauth2/token`, form encoded). A refusal
 * (400 `invalid_grant`: revoked or expired refresh token; `invalid_client`: wrong secret) means the
 * connection needs re-authorizing: AuthExpired. The response's `instance_url` wins over the
 * configured one (an org moved to another instance, or a login URL that is not the org's).
 * See https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm
 */
const requestSession = async (ctx: ConnectorContext<SalesforceConfig>): Promise<SalesforceSession> => {
  const response = await ctx.http.request({
    method: "POST",
    url: `${tokenOrigin(ctx.config)}/services/oauth2/token`,
    body: new URLSearchParams({
      grant_type: "refresh_token",
      client_id: ctx.config.clientId,
      client_secret: Redacted.value(ctx.config.clientSecret),
      refresh_token: Redacted.value(ctx.config.refreshToken),
    }),
  });
  if (response.status !== 200) {
    const refused = Schema.decodeUnknownEither(OAuthErrorWire)(response.body);
    // The OAuth error code only: this endpoint is whatever loginUrl names, so its prose is not quoted.
    const reason = (refused._tag === "Right" ? vendorCode(refused.right.error) : undefined) ?? String(response.status);
    throw new AuthExpired({ message: `Salesforce refused the refresh token (${reason})` });
  }
  const decoded = Schema.decodeUnknownEither(TokenWire)(response.body);
  if (decoded._tag === "Left")
    throw new AuthExpired({ message: "Salesforce's token endpoint answered an unexpected body" });
  const session = {
    accessToken: decoded.right.access_token,
    instanceUrl: decoded.right.instance_url.replace(/\/+$/, ""),
  };
  sessions.set(cacheKey(ctx.config), session);
  ctx.log.debug("salesforce: refreshed the OAuth session", { instanceUrl: session.instanceUrl });
  return session;
};

/** One refresh per connection at a time. */
const refresh = (ctx: ConnectorContext<SalesforceConfig>): Promise<SalesforceSession> => {
  const key = cacheKey(ctx.config);
  const pending = refreshing.get(key);
  if (pending !== undefined) return pending;
  const started = requestSession(ctx).finally(() => refreshing.delete(key));
  refreshing.set(key, started);
  return started;
};

/** The session for a call: the cached one, else a fresh one. */
export const currentSession = (ctx: ConnectorContext<SalesforceConfig>): Promise<SalesforceSession> =>
  Promise.resolve(sessions.get(cacheKey(ctx.config)) ?? refresh(ctx));

/** A fresh session, whatever is cached: what a credential check needs to prove. */
export const verifiedSession = (ctx: ConnectorContext<SalesforceConfig>): Promise<SalesforceSession> => refresh(ctx);

/** After a 401 with `stale`: a session another call already refreshed, or a new one. */
export const renewSession = (
  ctx: ConnectorContext<SalesforceConfig>,
  stale: SalesforceSession,
): Promise<SalesforceSession> => {
  const key = cacheKey(ctx.config);
  const cached = sessions.get(key);
  if (cached !== undefined && cached.accessToken !== stale.accessToken) return Promise.resolve(cached);
  sessions.delete(key);
  return refresh(ctx);
};
