import { ParseResult } from "effect";

/*
 * What an error may say about another server's response. Error messages reach tenants
 * (job lastError, connections.test, push results), and the server that answered is whatever
 * the connection's URL names: a response body quoted into an error would hand its content to
 * the tenant (an internal service's page, a metadata document). So errors carry the status and
 * fixed words; from a vendor's known error shape, its code; and only where the tenant must act
 * on the record (a refused value), the vendor's message, on one line and capped.
 */

const codeLike = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

/** A vendor's error code or category read from a parsed known field (`INVALID_FIELD`), or undefined. */
export const vendorCode = (value: unknown): string | undefined =>
  typeof value === "string" && codeLike.test(value) ? value : undefined;

/** Longest vendor message quoted: enough for "Property values were not valid: email ...". */
const maxMessageLength = 300;

/**
 * A vendor's human-readable message from its known error shape, for errors the tenant must act
 * on (a refused value, a duplicate): one line, at most 300 characters. Never a raw body.
 */
export const vendorMessage = (value: unknown): string | undefined => {
  if (typeof value !== "string") return undefined;
  const line = value.replace(/\s+/g, " ").trim();
  if (line === "") return undefined;
  return line.length > maxMessageLength ? `${line.slice(0, maxMessageLength)}…` : line;
};

/**
 * Says where a response did not match the expected shape, by path (`results.0.id`), never with
 * the values: a ParseError's own message quotes what it received.
 */
export const shapeMismatch = (error: ParseResult.ParseError): string => {
  const paths = [
    ...new Set(
      ParseResult.ArrayFormatter.formatErrorSync(error).map((i) => (i.path.length > 0 ? i.path.join(".") : "(body)")),
    ),
  ];
  const shown = paths.slice(0, 5).join(", ");
  return `unexpected response shape at ${shown}${paths.length > 5 ? ` and ${paths.length - 5} more` : ""}`;
};
