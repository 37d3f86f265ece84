import { describe, expect, it } from "vitest";
import { coalesceEntry, type OutboxChange } from "../../src/store/outbox/coalesceEntry.ts";
import type { OutboxEntry } from "../../src/store/PushOutboxRows.ts";

/* How a record's local changes fold into its one outbox entry: pure, no database. */

const t0 = new Date("2026-12-06T10:00:00.000Z");
const at = (ms: number) => new Date(t0.getTime() + ms);

const entry = (overrides: Partial<OutboxEntry> = {}): OutboxEntry => ({
  id: "e1",
  tenantId: "t",
  connectionId: "c",
  entity: "contacts",
  externalId: "42",
  operation: "update",
  critical: false,
  status: "pending",
  dueAt: at(1_000),
  revision: 1,
  attempts: 0,
  lastError: null,
  lastAttemptAt: null,
  claimedBy: null,
  claimedUntil: null,
  firstChangeAt: t0,
  lastChangeAt: t0,
  ...overrides,
});

const change = (operation: OutboxChange["operation"], ms: number, options: { critical?: boolean } = {}) => ({
  operation,
  critical: options.critical ?? false,
  dueAt: options.critical ? at(ms) : at(ms + 1_000),
  at: at(ms),
});

describe("coalesceEntry", () => {
  it("a record's first change is a new entry, with a drain due when it is", () => {
    const c = change("update", 0);
    expect(coalesceEntry(undefined, c)).toEqual({ write: { _tag: "Insert", change: c }, wakeAt: at(1_000) });
  });

  it("later edits within the window join the entry, keep its first due time and wake no drain", () => {
    const coalesced = coalesceEntry(entry(), change("update", 300));
    expect(coalesced.wakeAt).toBeUndefined();
    expect(coalesced.write).toMatchObject({ _tag: "Coalesce", id: "e1", revive: false });
    expect(coalesced.write._tag === "Coalesce" && coalesced.write.change).toMatchObject({
      operation: "update",
      dueAt: at(1_000),
      critical: false,
    });
  });

  it("a critical change makes the entry due at once and wakes a drain", () => {
    const coalesced = coalesceEntry(entry(), change("update", 300, { critical: true }));
    expect(coalesced.wakeAt).toEqual(at(300));
    expect(coalesced.write._tag === "Coalesce" && coalesced.write.change).toMatchObject({
      dueAt: at(300),
      critical: true,
    });
  });

  it("an edit of a record whose create is waiting is part of the create", () => {
    const coalesced = coalesceEntry(entry({ operation: "create" }), change("update", 300));
    expect(coalesced.write._tag === "Coalesce" && coalesced.write.change.operation).toBe("create");
  });

  it("a delete of a record whose create was never written cancels both: nothing reaches the vendor", () => {
    expect(coalesceEntry(entry({ operation: "create" }), change("delete", 300))).toEqual({
      write: { _tag: "Cancel", id: "e1" },
      wakeAt: undefined,
    });
  });

  it("a delete while the create is being written follows it: the vendor may have the record by then", () => {
    const inFlight = entry({ operation: "create", claimedBy: "job", claimedUntil: at(60_000) });
    const coalesced = coalesceEntry(inFlight, change("delete", 300));
    expect(coalesced.write._tag === "Coalesce" && coalesced.write.change.operation).toBe("delete");
    // The drain writing the create keeps the entry (a new revision) and goes on with it.
    expect(coalesced.wakeAt).toBeUndefined();
  });

  it("an edit then a delete is a delete", () => {
    const coalesced = coalesceEntry(entry(), change("delete", 300));
    expect(coalesced.write._tag === "Coalesce" && coalesced.write.change.operation).toBe("delete");
  });

  it("a change to a record whose push is dead brings it back, with a fresh due time and a drain", () => {
    const dead = entry({ status: "dead", attempts: 5, critical: true, dueAt: at(-60_000) });
    const coalesced = coalesceEntry(dead, change("update", 300));
    expect(coalesced.wakeAt).toEqual(at(1_300));
    expect(coalesced.write).toMatchObject({ _tag: "Coalesce", revive: true });
    expect(coalesced.write._tag === "Coalesce" && coalesced.write.change).toMatchObject({
      dueAt: at(1_300),
      critical: false,
    });
  });

  it("a change waiting out a retry's backoff makes the entry due again within the window", () => {
    const backingOff = entry({ attempts: 2, dueAt: at(120_000) });
    const coalesced = coalesceEntry(backingOff, change("update", 300));
    expect(coalesced.wakeAt).toEqual(at(1_300));
  });
});
