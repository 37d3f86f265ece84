import { createHash, createHmac } from "node:crypto";

/**
 * HubSpot's webhook signatures, computed as the sender does. Kept independent of the
 * connector's verifier so tests can check one against the other.
 * See https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests
 */

/** v1: hex(SHA-256(clientSecret + body)). Sent with `X-HubSpot-Signature-Version: v1`. */
export const signHubSpotV1 = (input: { readonly clientSecret: string; readonly body: string }): string =>
  createHash("sha256")
    .update(input.clientSecret + input.body, "utf8")
    .digest("hex");

/** v2: hex(SHA-256(clientSecret + method + uri + body)), the URI exactly as requested (protocol included). */
export const signHubSpotV2 = (input: {
  readonly clientSecret: string;
  readonly method: string;
  readonly uri: string;
  readonly body: string;
}): string =>
  createHash("sha256")
    .update(input.clientSecret + input.method + input.uri + input.body, "utf8")
    .digest("hex");

/**
 * v3: base64(HMAC-SHA256(clientSecret, method + uri + body + timestamp)), with the timestamp
 * (epoch ms) sent in `X-HubSpot-Request-Timestamp`. Receivers reject timestamps older than 5 minutes.
 */
export const signHubSpotV3 = (input: {
  readonly clientSecret: string;
  readonly method: string;
  readonly uri: string;
  readonly body: string;
  readonly timestamp: number;
}): string =>
  createHmac("sha256", input.clientSecret)
    .update(input.method + input.uri + input.body + String(input.timestamp), "utf8")
    .digest("base64");

export type HubSpotSignatureVersion = "v1" | "v2" | "v3";

/**
 * The signature headers HubSpot sends for one delivery. The legacy header
 * (`X-HubSpot-Signature`) carries the first of v1/v2 listed; v3 adds its own pair.
 */
export const hubSpotSignatureHeaders = (input: {
  readonly clientSecret: string;
  readonly method: string;
  readonly uri: string;
  readonly body: string;
  readonly timestamp: number;
  readonly versions: ReadonlyArray<HubSpotSignatureVersion>;
}): Record<string, string> => {
  const headers: Record<string, string> = {};
  const legacy = input.versions.find((v) => v === "v1" || v === "v2");
  if (legacy === "v1") {
    headers["x-hubspot-signature"] = signHubSpotV1(input);
    headers["x-hubspot-signature-version"] = "v1";
  } else if (legacy === "v2") {
    headers["x-hubspot-signature"] = signHubSpotV2(input);
    headers["x-hubspot-signature-version"] = "v2";
  }
  if (input.versions.includes("v3")) {
    headers["x-hubspot-signature-v3"] = signHubSpotV3(input);
    headers["x-hubspot-request-timestamp"] = String(input.timestamp);
  }
  return headers;
};
