import { type AccessGrant, AuthExpired, type AuthRequest, vendorCode } from "@tandem/connector-sdk";
import { Redacted, Schema } from "effect";
import type { HubSpotConfig } from "./config.ts";
import { TokenWire } from "./wire.ts";

/**
 * The connector's `auth` hook. A configured `accessToken` (a private app token, or a current
 * OAuth token) is used until HubSpot refuses it; with `oauth`, the refresh token (the one HubSpot
 * last returned, else the configured one) is traded at `POST /oauth/v1/token` (form encoded).
 * HubSpot answers 400 (BAD_REFRESH_TOKEN, BAD_CLIENT_ID) when the grant is refused: the
 * connection needs re-authorizing, so that is AuthExpired.
 * See https://developers.hubspot.com/docs/api/oauth/tokens
 */
export const hubSpotAuth = async ({
  config,
  refreshState,
  previous,
  http,
  log,
}: AuthRequest<HubSpotConfig>): Promise<AccessGrant> => {
  if (previous === undefined && config.accessToken !== undefined) return { accessToken: config.accessToken };
  const oauth = config.oauth;
  if (oauth === undefined) throw new AuthExpired({ message: "HubSpot refused the access token" });
  const refreshToken = Redacted.value(refreshState ?? oauth.refreshToken);
  const response = await http.request({
    method: "POST",
    url: `${config.baseUrl}/oauth/v1/token`,
    body: new URLSearchParams({
      grant_type: "refresh_token",
      client_id: oauth.clientId,
      client_secret: Redacted.value(oauth.clientSecret),
      refresh_token: refreshToken,
    }),
  });
  if (response.status !== 200) {
    const status = vendorCode((response.body as { status?: unknown } | undefined)?.status) ?? String(response.status);
    throw new AuthExpired({ message: `HubSpot refused the refresh token (${status})` });
  }
  const decoded = Schema.decodeUnknownEither(TokenWire)(response.body);
  if (decoded._tag === "Left")
    throw new AuthExpired({ message: "HubSpot's token endpoint answered an unexpected body" });
  log.debug("hubspot: refreshed the OAuth access token", { expiresIn: decoded.right.expires_in });
  const rotated = decoded.right.refresh_token;
  return {
    accessToken: Redacted.make(decoded.right.access_token),
    expiresInMs: decoded.right.expires_in * 1000,
    ...(rotated !== undefined && rotated !== refreshToken ? { refreshState: Redacted.make(rotated) } : {}),
  };
};
