import type { StoredRecord } from "../../store/RecordStore.ts";
import type { MatchKey } from "./matchKey.ts";

/** A record at the vendor, as the match sees it. */
export interface VendorRecord {
  readonly externalId: string;
  readonly data: Record<string, unknown>;
  /** Its modification time, where the vendor gives one. */
  readonly updatedAt: Date | null;
}

/** What a first two-way sync of an entity does with its records (see `planMatches`). */
export interface MatchPlan {
  /** Local-only records linked to the one vendor record with their key: not created, merged. */
  readonly matched: ReadonlyArray<{
    readonly local: StoredRecord;
    readonly vendor: VendorRecord;
    readonly key: string;
  }>;
  /** Local-only records with no vendor record of their key (or no key): created at the vendor. */
  readonly toCreateRemotely: ReadonlyArray<StoredRecord>;
  /** Vendor records Tandem does not store and no local record matches: pulled as new records. */
  readonly toCreateLocally: ReadonlyArray<VendorRecord>;
  /** Local-only records with several candidates: neither created nor linked, held for an operator. */
  readonly ambiguous: ReadonlyArray<{
    readonly local: StoredRecord;
    readonly key: string;
    readonly candidates: ReadonlyArray<VendorRecord>;
    /** `vendor`: several vendor records have the key; `local`: other local records claim the same one. */
    readonly reason: "vendor" | "local";
  }>;
}

export interface MatchInput {
  readonly localOnly: ReadonlyArray<StoredRecord>;
  readonly vendor: ReadonlyArray<VendorRecord>;
  /** Vendor ids Tandem stores already. */
  readonly storedIds: ReadonlySet<string>;
  /** Vendor ids a host record is linked to already: never a candidate. */
  readonly linkedIds: ReadonlySet<string>;
}

const groupBy = <A>(items: ReadonlyArray<A>, keyOf: (a: A) => string | null) => {
  const groups = new Map<string, Array<A>>();
  for (const item of items) {
    const key = keyOf(item);
    if (key === null) continue;
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [item]);
    else group.push(item);
  }
  return groups;
};

/**
 * The initial match, pure: a local-only record is linked when exactly one vendor record (not
 * linked to another host record) has its key and no other local-only record has it; several
 * vendor records with the key, or several local records for one vendor record, make it
 * ambiguous. A record without a key, or whose key no vendor record has, is to be created.
 */
export const planMatches = (input: MatchInput, key: MatchKey): MatchPlan => {
  const localKey = (r: StoredRecord) => key.keyOf(r.data);
  const candidates = groupBy(
    input.vendor.filter((v) => !input.linkedIds.has(v.externalId)),
    (v) => key.keyOf(v.data),
  );
  const locals = groupBy(input.localOnly, localKey);
  const matched: Array<MatchPlan["matched"][number]> = [];
  const toCreateRemotely: Array<StoredRecord> = [];
  const ambiguous: Array<MatchPlan["ambiguous"][number]> = [];
  for (const local of input.localOnly) {
    const k = localKey(local);
    const found = k === null ? undefined : candidates.get(k);
    if (k === null || found === undefined) toCreateRemotely.push(local);
    else if (found.length > 1) ambiguous.push({ local, key: k, candidates: found, reason: "vendor" });
    else if ((locals.get(k)?.length ?? 0) > 1) ambiguous.push({ local, key: k, candidates: found, reason: "local" });
    else matched.push({ local, vendor: found[0]!, key: k });
  }
  const matchedIds = new Set(matched.map((m) => m.vendor.externalId));
  const toCreateLocally = input.vendor.filter(
    (v) => !input.storedIds.has(v.externalId) && !matchedIds.has(v.externalId),
  );
  return { matched, toCreateRemotely, toCreateLocally, ambiguous };
};
