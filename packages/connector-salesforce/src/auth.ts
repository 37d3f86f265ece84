import { type AccessGrant, AuthExpired, type AuthRequest, vendorCode } from "@tandem/connector-sdk";
import { Redacted, Schema } from "effect";
import type { SalesforceConfig } from "./config.ts";
import { OAuthErrorWire, TokenWire } from "./wire.ts";

const tokenOrigin = (config: SalesforceConfig) => (config.loginUrl ?? config.instanceUrl).replace(/\/+$/, "");

/**
 * The connector's `auth` hook: trades the refresh token (the one Salesforce last rotated, else
 * the configured one) for a session, `POST /services/oauth2/token`, form encoded. A refusal
 * (400 `invalid_grant`: revoked or expired refresh token; `invalid_client`: wrong secret) means
 * the connection needs re-authorizing: AuthExpired. Salesforce states no expiry, so a session is
 * used until a 401. The response's `instance_url` wins over the configured one (an org moved to
 * another instance, or a login URL that is not the org's): it is the grant's `instanceUrl` detail.
 * A connected app with refresh token rotation answers a new `refresh_token` each time.
 * See https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm
 */
export const salesforceAuth = async ({
  config,
  refreshState,
  http,
  log,
}: AuthRequest<SalesforceConfig>): Promise<AccessGrant> => {
  const refreshToken = Redacted.value(refreshState ?? config.refreshToken);
  const response = await http.request({
    method: "POST",
    url: `${tokenOrigin(config)}/services/oauth2/token`,
    body: new URLSearchParams({
      grant_type: "refresh_token",
      client_id: config.clientId,
      client_secret: Redacted.value(config.clientSecret),
      refresh_token: refreshToken,
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
  const instanceUrl = decoded.right.instance_url.replace(/\/+$/, "");
  log.debug("salesforce: refreshed the OAuth session", { instanceUrl });
  const rotated = decoded.right.refresh_token;
  return {
    accessToken: Redacted.make(decoded.right.access_token),
    details: { instanceUrl },
    ...(rotated !== undefined && rotated !== refreshToken ? { refreshState: Redacted.make(rotated) } : {}),
  };
};

/** The instance the current session is valid on. */
export const sessionInstanceUrl = async (ctx: { readonly auth: { readonly grant: () => Promise<AccessGrant> } }) =>
  (await ctx.auth.grant()).details?.instanceUrl;
