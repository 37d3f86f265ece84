import { describe, expect, it } from "vitest";
import { DEFAULT_GUARD_LIMITS, judgeBurst, judgeShare } from "../../src/store/quarantine/guardRules.ts";

describe("the mass-deletion guard's rules", () => {
  const burst = (deletedInWindow: number, incoming: number, pendingReview = false) =>
    judgeBurst({ pendingReview, deletedInWindow, incoming, maxDeletions: DEFAULT_GUARD_LIMITS.maxDeletions });

  it("a delta or webhook burst: up to maxDeletions in the window apply; a batch past it is held whole", () => {
    expect(DEFAULT_GUARD_LIMITS).toEqual({ maxDeletions: 100, windowMinutes: 60, maxDeleteShare: 0.2 });
    expect(burst(0, 100)).toEqual({ hold: false });
    expect(burst(99, 1)).toEqual({ hold: false });
    expect(burst(100, 1)).toEqual({ hold: true, rule: "max-deletions" });
    expect(burst(0, 101)).toEqual({ hold: true, rule: "max-deletions" });
    // A batch that crosses the limit is held whole, not cut at it.
    expect(burst(90, 20)).toEqual({ hold: true, rule: "max-deletions" });
  });

  it("while deletions wait for review, every further one joins them; nothing to delete is never held", () => {
    expect(burst(0, 1, true)).toEqual({ hold: true, rule: "pending-review" });
    expect(burst(0, 0, true)).toEqual({ hold: false });
    expect(burst(500, 0)).toEqual({ hold: false });
  });

  it("reconciliation: more than the share of the stored records is held; an empty store holds nothing", () => {
    expect(judgeShare({ vanished: 20, stored: 100, maxDeleteShare: 0.2 })).toEqual({ hold: false, share: 0.2 });
    expect(judgeShare({ vanished: 21, stored: 100, maxDeleteShare: 0.2 })).toEqual({ hold: true, share: 0.21 });
    expect(judgeShare({ vanished: 0, stored: 0, maxDeleteShare: 0 })).toEqual({ hold: false, share: 0 });
    expect(judgeShare({ vanished: 1, stored: 1, maxDeleteShare: 1 })).toEqual({ hold: false, share: 1 });
  });
});
