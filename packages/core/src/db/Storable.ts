/**
 * What PostgreSQL can store, checked before a statement runs. A value it refuses fails the whole
 * statement: on a group-committed statement (the webhook intake) every caller sharing it, and
 * anywhere else a 500 that monitoring reads as an outage. So values from outside (API input,
 * vendor webhooks) are checked against these bounds first, and refused with a 400 naming the
 * field.
 */

/**
 * Characters in an identifier that is indexed (an external id, an event id, a cursor). A btree
 * index row holds at most 2,704 bytes (PostgreSQL refuses a 1 MB external id with "index row
 * size exceeds maximum", 54000); 512 UTF-16 units are at most 1,536 bytes of UTF-8.
 */
export const MAX_IDENTIFIER_LENGTH = 512;

/** A UTF-16 unit of a surrogate pair that has no partner (not encodable as UTF-8). */
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Why PostgreSQL cannot store `text` as text or in jsonb, or undefined when it can: a NUL
 * character (refused by both), a lone surrogate (jsonb refuses its escape; a text parameter
 * would silently become U+FFFD), or more than `maxLength` characters when a bound is given.
 */
export const textIssue = (text: string, maxLength?: number): string | undefined => {
  if (maxLength !== undefined && text.length > maxLength) return `must be at most ${maxLength} characters`;
  if (text.includes("\u0000")) return "must not contain a NUL character";
  if (loneSurrogate.test(text)) return "must be well-formed Unicode (it has a lone surrogate)";
  return undefined;
};

/**
 * The dates every column accepts: years 1 to 9999, the ISO-8601 four-digit years. PostgreSQL's
 * timestamptz starts in 4713 BC, but `toISOString` writes years before 0 or after 9999 with a
 * sign and six digits, and such a year far enough out fails the statement ("time zone
 * displacement out of range"): no real record or event is dated outside these years.
 */
export const storableDateRange = {
  min: new Date("0001-01-01T00:00:00.000Z"),
  max: new Date("9999-12-31T23:59:59.999Z"),
} as const;

/** A valid Date within `storableDateRange`. */
export const isStorableDate = (date: unknown): date is Date =>
  date instanceof Date &&
  !Number.isNaN(date.getTime()) &&
  date.getTime() >= storableDateRange.min.getTime() &&
  date.getTime() <= storableDateRange.max.getTime();
