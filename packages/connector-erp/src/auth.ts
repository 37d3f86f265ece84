import { type AccessGrant, AuthExpired, type AuthRequest, vendorCode } from "@tandem/connector-sdk";
import { Redacted, Schema } from "effect";
import type { BusinessCentralConfig } from "./config.ts";
import { TokenErrorWire, TokenWire } from "./wire.ts";

/**
 * The connector's `auth` hook: a client-credentials token from the Microsoft identity platform,
 * `POST {authorityUrl}/{tenantId}/oauth2/v2.0/token`, form encoded. The grant has no refresh
 * token: a new token is requested with the same credentials. Any refusal is AuthExpired.
 * See https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
 */
export const businessCentralAuth = async ({
  config,
  http,
  log,
}: AuthRequest<BusinessCentralConfig>): Promise<AccessGrant> => {
  // ctx.http throws AuthExpired itself on a 401 (invalid_client: a wrong secret).
  const response = await http.request({
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
  log.debug("erp: obtained an access token", { expiresIn: decoded.right.expires_in });
  // Microsoft issues tokens for 60 to 90 minutes; the engine renews them 5 minutes before.
  return { accessToken: Redacted.make(decoded.right.access_token), expiresInMs: decoded.right.expires_in * 1000 };
};
