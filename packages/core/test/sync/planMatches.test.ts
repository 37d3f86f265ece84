import { describe, expect, it } from "vitest";
import type { StoredRecord } from "../../src/store/RecordStore.ts";
import { matchKeyFor, matchKeyOver } from "../../src/sync/matching/matchKey.ts";
import { planMatches, type VendorRecord } from "../../src/sync/matching/planMatches.ts";

/** A record created locally, as the store holds it before its push. */
const local = (localId: string, data: Record<string, unknown>): StoredRecord => ({
  externalId: `local:${localId}`,
  localId,
  provisional: true,
  data,
  remoteUpdatedAt: null,
  localUpdatedAt: new Date(0),
  base: data,
  pendingChanges: data,
  version: 1,
  syncStatus: "pending",
  syncError: null,
  lastSyncedAt: null,
  deletedAt: null,
  changeSeq: "1",
  changeXid: "1",
  changedAt: new Date(0),
});
const vendor = (externalId: string, data: Record<string, unknown>): VendorRecord => ({
  externalId,
  data,
  updatedAt: null,
});

describe("match keys", () => {
  it("defaults per entity: contacts by email, items by number then SKU, companies by domain; none otherwise", () => {
    expect(matchKeyFor("contacts")!.keyOf({ email: "  Ann@Example.COM " })).toBe("email:ann@example.com");
    expect(matchKeyFor("items")!.keyOf({ number: "1896-S" })).toBe("number:1896-s");
    expect(matchKeyFor("items")!.keyOf({ number: "", sku: "SKU-9" })).toBe("sku:sku-9");
    expect(matchKeyFor("companies")!.keyOf({ domain: "https://www.Acme.com/about" })).toBe("domain:acme.com");
    expect(matchKeyFor("customers")).toBeUndefined();
    expect(matchKeyFor("customers", ["email"])!.fields).toEqual(["email"]);
  });

  it("a record without a value in the key's fields has no key; an item's number never matches another's SKU", () => {
    const key = matchKeyOver(["number", "sku"]);
    expect(key.keyOf({ number: null, sku: "  " })).toBeNull();
    expect(key.keyOf({ number: "A1" })).not.toBe(key.keyOf({ sku: "A1" }));
    expect(matchKeyFor("contacts", ["lastName"])!.keyOf({ email: "a@b.c", lastName: "Smith" })).toBe("lastName:smith");
  });
});

describe("planMatches", () => {
  const key = matchKeyFor("contacts")!;
  const none = new Set<string>();

  it("one candidate: matched; several: ambiguous; none or no key: to create remotely; the rest: to create locally", () => {
    const plan = planMatches(
      {
        localOnly: [
          local("ann", { email: "ANN@x.com" }),
          local("dup", { email: "dup@x.com" }),
          local("new", { email: "new@x.com" }),
          local("nokey", { firstName: "No" }),
        ],
        vendor: [
          vendor("1", { email: "ann@x.com" }),
          vendor("2", { email: "dup@x.com" }),
          vendor("3", { email: "DUP@x.com" }),
          vendor("4", { email: "vendor@x.com" }),
          vendor("5", { email: "stored@x.com" }),
        ],
        storedIds: new Set(["5"]),
        linkedIds: none,
      },
      key,
    );
    expect(plan.matched.map((m) => [m.local.localId, m.vendor.externalId, m.key])).toEqual([
      ["ann", "1", "email:ann@x.com"],
    ]);
    expect(plan.ambiguous.map((a) => [a.local.localId, a.reason, a.candidates.map((c) => c.externalId)])).toEqual([
      ["dup", "vendor", ["2", "3"]],
    ]);
    expect(plan.toCreateRemotely.map((r) => r.localId)).toEqual(["new", "nokey"]);
    // Already stored (5) is not to create; the ambiguous candidates are still pulled as they are.
    expect(plan.toCreateLocally.map((v) => v.externalId)).toEqual(["2", "3", "4"]);
  });

  it("two local records wanting one vendor record are both ambiguous; a vendor record linked to a host record is no candidate", () => {
    const plan = planMatches(
      {
        localOnly: [
          local("a", { email: "eve@x.com" }),
          local("b", { email: "Eve@x.com" }),
          local("c", { email: "l@x.com" }),
        ],
        vendor: [vendor("1", { email: "eve@x.com" }), vendor("2", { email: "l@x.com" })],
        storedIds: new Set(["2"]),
        linkedIds: new Set(["2"]),
      },
      key,
    );
    expect(plan.matched).toEqual([]);
    expect(plan.ambiguous.map((a) => [a.local.localId, a.reason])).toEqual([
      ["a", "local"],
      ["b", "local"],
    ]);
    expect(plan.toCreateRemotely.map((r) => r.localId)).toEqual(["c"]);
  });
});
