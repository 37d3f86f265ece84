/**
 * The mass-deletion guard's rules, as pure functions of the figures the guard reads (tested
 * without a database). Each path has the rule that fits what it sees:
 *
 * - reconciliation compares the whole remote id list with the store, so it can judge a share:
 *   more than `maxDeleteShare` of the stored records vanishing at once looks like an outage or a
 *   wrong account, not a cleanup;
 * - a delta's tombstones and webhooks arrive a few at a time and never show the whole picture, so
 *   they are judged by count: more than `maxDeletions` deletions of one connection x entity within
 *   `windowMinutes` is a burst. Every deletion of the entity in the window counts, whatever made
 *   it (a reconciliation's too); the window restarts at the latest decision on held deletions.
 *   Once a burst is held, every later deletion of that entity joins the queue until an operator
 *   has looked at it: the rest of a burst is the same burst.
 */

/** The guard's thresholds (engine-wide in `DeletionGuardConfig`; a run's options may override them). */
export interface DeletionGuardLimits {
  /** Deletions by deltas and webhooks allowed per connection x entity within the window. */
  readonly maxDeletions: number;
  readonly windowMinutes: number;
  /** The share of the stored records one reconciliation may delete. */
  readonly maxDeleteShare: number;
}

/**
 * The defaults. 100 deletions an hour leaves room for a person cleaning up a CRM by hand (a few
 * a minute) and catches a bulk delete, an import gone wrong or a vendor answering tombstones by
 * mistake within its first hundred records; 20% is the reconciliation share the engine always had.
 */
export const DEFAULT_GUARD_LIMITS: DeletionGuardLimits = {
  maxDeletions: 100,
  windowMinutes: 60,
  maxDeleteShare: 0.2,
};

/** Why deletions were held (stored with each queued deletion as `guard.rule`). */
export type GuardRule = "max-deletions" | "pending-review" | "max-share";

/** A burst's figures and what the guard made of them. */
export interface BurstJudgement {
  readonly hold: boolean;
  readonly rule?: GuardRule;
}

/**
 * Deletions reported by a delta page or a webhook: `incoming` of them (live records), after
 * `deletedInWindow` deletions of the entity in the window. A batch that would take the window past
 * the limit is held whole: the first records of a mass deletion are as suspect as the rest.
 */
export const judgeBurst = (o: {
  readonly pendingReview: boolean;
  readonly deletedInWindow: number;
  readonly incoming: number;
  readonly maxDeletions: number;
}): BurstJudgement =>
  o.incoming === 0
    ? { hold: false }
    : o.pendingReview
      ? { hold: true, rule: "pending-review" }
      : o.deletedInWindow + o.incoming > o.maxDeletions
        ? { hold: true, rule: "max-deletions" }
        : { hold: false };

/** Reconciliation's rule: holds when the vanished records are more than `maxDeleteShare` of the stored ones. */
export const judgeShare = (o: {
  readonly vanished: number;
  readonly stored: number;
  readonly maxDeleteShare: number;
}): { readonly hold: boolean; readonly share: number } => {
  const share = o.stored === 0 ? 0 : o.vanished / o.stored;
  return { hold: o.vanished > 0 && share > o.maxDeleteShare, share };
};
