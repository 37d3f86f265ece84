import { createHmac, timingSafeEqual } from "node:crypto";

/** Header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export const SIGNATURE_HEADER = "tandem-signature";

/** Signs an outbound payload; the timestamp is part of the signed text, so replays expire. */
export const signPayload = (secret: string, body: string, timestampSeconds: number): string =>
  `t=${timestampSeconds},v1=${createHmac("sha256", secret).update(`${timestampSeconds}.${body}`).digest("hex")}`;

/**
 * Verifies a `tandem-signature` header, for receivers of Tandem's webhooks.
 * Rejects a timestamp outside `toleranceSeconds` (default 300) of `now`, and
 * compares in constant time.
 */
export const verifySignature = (
  secret: string,
  header: string | null | undefined,
  body: string,
  options: { readonly now?: Date; readonly toleranceSeconds?: number } = {},
): boolean => {
  if (!header) return false;
  const parts = Object.fromEntries(
    header.split(",").map((p) => {
      const i = p.indexOf("=");
      return [p.slice(0, i).trim(), p.slice(i + 1).trim()];
    }),
  );
  const t = Number(parts.t);
  const given = parts.v1;
  if (!Number.isInteger(t) || given === undefined || !/^[0-9a-f]{64}$/.test(given)) return false;
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (Math.abs(now - t) > (options.toleranceSeconds ?? 300)) return false;
  const expected = createHmac("sha256", secret).update(`${t}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(given, "hex"));
};
