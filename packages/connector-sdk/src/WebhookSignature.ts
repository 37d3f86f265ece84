import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** Hash functions vendors sign webhooks with. */
export type HmacAlgorithm = "sha1" | "sha256" | "sha512";

/**
 * The HMAC of `payload` (UTF-8) under `secret`, as the vendor writes it in its signature
 * header: hex (Stripe-style, Taskboard) or base64 (HubSpot v3, Shopify). Compare it to the
 * header with `constantTimeEqual`, never with `===`.
 *
 * @example
 * hmacDigest(secret, `${timestamp}.${request.rawBody}`) // hex HMAC-SHA256
 * hmacDigest(secret, method + uri + body + timestamp, { encoding: "base64" })
 */
export const hmacDigest = (
  secret: string,
  payload: string,
  options: { readonly algorithm?: HmacAlgorithm; readonly encoding?: "hex" | "base64" } = {},
): string =>
  createHmac(options.algorithm ?? "sha256", secret)
    .update(payload, "utf8")
    .digest(options.encoding ?? "hex");

const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest();

/**
 * True when two secrets or signatures are equal, in time that does not depend on where they
 * differ or on the given value's length: both are hashed to equal-length digests first, so
 * `timingSafeEqual` never throws on a length mismatch and a wrong-length guess takes as long
 * as any other. For HMAC signatures and shared secrets echoed in a delivery (Business
 * Central's `clientState`).
 */
export const constantTimeEqual = (expected: string, given: string): boolean =>
  timingSafeEqual(sha256(expected), sha256(given));
