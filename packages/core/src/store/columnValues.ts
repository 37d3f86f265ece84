/**
 * Column values as the two dialects hand them back: `pg` parses timestamps and jsonb, while a
 * value read through raw SQL on PGlite (or cast to text) may still be a string.
 */

export const asDate = (v: unknown): Date | null =>
  v === null || v === undefined ? null : v instanceof Date ? v : new Date(String(v));

export const asObject = (v: unknown): Record<string, unknown> | null =>
  v === null || v === undefined ? null : typeof v === "string" ? JSON.parse(v) : (v as Record<string, unknown>);
