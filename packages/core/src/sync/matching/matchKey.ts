/**
 * The match key of an entity: what says that a record the host created and a record the vendor
 * has are the same thing (see initialMatch.ts). The ONE place a key is decided: the override given
 * by the caller (a plan's, else the connection's `matchKey` setting), else the default of the
 * entity's name below.
 */
export interface MatchKey {
  /** The fields tried in order; the first that holds a value is the key. */
  readonly fields: ReadonlyArray<string>;
  /** The record's key, normalized; null when none of the fields holds a value. */
  readonly keyOf: (data: Record<string, unknown>) => string | null;
}

/** Emails and other strings: trimmed, case-insensitive. */
const normalizeText = (value: string) => value.trim().toLowerCase();

/** A domain as people write it: no scheme, no `www.`, no path, case-insensitive. */
const normalizeDomain = (value: string) =>
  normalizeText(value)
    .replace(/^[a-z][a-z0-9+.-]*:\/\//, "")
    .replace(/^www\./, "")
    .replace(/[/?#].*$/, "");

/** The connectors' entities with a natural key (contacts: email; items: number or SKU; companies: domain). */
const DEFAULTS: Readonly<Record<string, ReadonlyArray<string>>> = {
  contacts: ["email"],
  items: ["number", "sku"],
  companies: ["domain"],
};

const normalizerOf = (field: string) => (field === "domain" ? normalizeDomain : normalizeText);

/** A key over `fields`: the first that holds a non-empty string (or a number), normalized. */
export const matchKeyOver = (fields: ReadonlyArray<string>): MatchKey => ({
  fields,
  keyOf: (data) => {
    for (const field of fields) {
      const value = data[field];
      if (typeof value === "number" && Number.isFinite(value)) return `${field}:${value}`;
      if (typeof value !== "string") continue;
      const normalized = normalizerOf(field)(value);
      // The field is part of the key: an item's number never matches another's SKU.
      if (normalized !== "") return `${field}:${normalized}`;
    }
    return null;
  },
});

/**
 * The match key of `entity`: `override` (field names, tried in order) when given, else the
 * entity's default; undefined when it has neither (its records are not matched: each local one
 * is created at the vendor).
 */
export const matchKeyFor = (entity: string, override?: ReadonlyArray<string>): MatchKey | undefined => {
  const fields = override !== undefined && override.length > 0 ? override : DEFAULTS[entity];
  return fields === undefined ? undefined : matchKeyOver(fields);
};
