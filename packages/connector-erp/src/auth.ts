import { createHash } from "node:crypto";
import { AuthExpired, type ConnectorContext, vendorCode } from "@tandem/connector-sdk";
import { Redacted, Schema } from "effect";
import type { BusinessCentralConfig } from "./config.ts";
import { TokenErrorWire, TokenWire } from "./wire.ts";

/*
 * Client-credentials tokens from the Microsoft identity platform.
 * See https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
 * The grant has no refresh token: a new token is simply requested with the same credentials.
 */

/** Tokens per (authority, tenant, client, secret, scope). Process-local: losing it costs one token request. */
const tokens = new Map<string, { readonly token: string; readonly expiresAt: number }>();

/** Requests under way, so concurrent calls that find no token share one. */
const requesting = new Map<string, Promise<string>>();

/**
 * Renew this long before the token's expiry (at most half its lifetime), so a token never
 * dies mid-request. Microsoft issues tokens for 60 to 90 minutes.
 */
const expiryMarginMs = 5 * 60_000;

const cacheKey = (config: BusinessCentralConfig) =>
  [
    config.authorityUrl,
    config.tenantId,
    config.clientId,
    config.scope,
    // The secret is part of the key (a rotated secret gets its own token), hashed so the map never holds it.
    createHash("sha256").update(Redacted.value(config.clientSecret)).digest("hex"),
  ].join("\u0000");

/** `POST {authorityUrl}/{tenantId}/oauth2/v2.0/token`, form encoded. Any refusal is AuthExpired. */
const requestToken = async (ctx: ConnectorContext<BusinessCentralConfig>, key: string): Promise<string> => {
  const { config } = ctx;
  // ctx.http throws AuthExpired itself on a 401 (invalid_client: a wrong secret).
  const response = await ctx.http.request({
    method: "POST",
    url: `${config.authorityUrl.replace(/\/+$/, "")}/${encodeURIComponent(config.tenantId)}/oauth2/v2.0/token`,
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_id: config.clientId,
      client_secret: Redacted.value(config.clientSecret),
      scope: config.scope,
    }),
  });
  if (response.status !== 200) {
    const refused = Schema.decodeUnknownEither(TokenErrorWire)(response.body);
    // The OAuth error code only: this endpoint is whatever authorityUrl names, so its prose is not quoted.
    const reason =
      (refused._tag === "Right" ? vendorCode(refused.right.error) : undefined) ?? `status ${response.status}`;
    throw new AuthExpired({ message: `the identity platform refused the client credentials (${reason})` });
  }
  const decoded = Schema.decodeUnknownEither(TokenWire)(response.body);
  if (decoded._tag === "Left") throw new AuthExpired({ message: "the token endpoint answered an unexpected body" });
  const lifetimeMs = decoded.right.expires_in * 1000;
  tokens.set(key, {
    token: decoded.right.access_token,
    expiresAt: Date.now() + lifetimeMs - Math.min(expiryMarginMs, lifetimeMs / 2),
  });
  ctx.log.debug("erp: obtained an access token", { expiresIn: decoded.right.expires_in });
  return decoded.right.access_token;
};

const fresh = (ctx: ConnectorContext<BusinessCentralConfig>, key: string): Promise<string> => {
  const pending = requesting.get(key);
  if (pending !== undefined) return pending;
  const started = requestToken(ctx, key).finally(() => requesting.delete(key));
  requesting.set(key, started);
  return started;
};

/** The bearer token for a call: the cached one while it is valid, else a new one. */
export const accessToken = (ctx: ConnectorContext<BusinessCentralConfig>): Promise<string> => {
  const key = cacheKey(ctx.config);
  const cached = tokens.get(key);
  if (cached !== undefined && cached.expiresAt > Date.now()) return Promise.resolve(cached.token);
  return fresh(ctx, key);
};

/**
 * Called after a 401 with the token that was refused (revoked, or the app's permissions
 * changed): forgets it and returns a new one, unless another call already replaced it.
 */
export const renewAccessToken = (ctx: ConnectorContext<BusinessCentralConfig>, refused: string): Promise<string> => {
  const key = cacheKey(ctx.config);
  const cached = tokens.get(key);
  if (cached !== undefined && cached.token !== refused && cached.expiresAt > Date.now()) {
    return Promise.resolve(cached.token);
  }
  tokens.delete(key);
  return fresh(ctx, key);
};
