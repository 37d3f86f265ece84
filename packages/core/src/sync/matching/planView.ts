import type { StoredRecord } from "../../store/RecordStore.ts";
import type { PlannedMatch } from "./initialMatch.ts";

/** A local-only record as the plan names it: the host's id and the provisional id Tandem gave it. */
export interface PlannedLocal {
  readonly localId: string | null;
  readonly provisionalId: string;
}

/** `sync.plan`'s answer: what a first two-way sync of a connection x entity would do. */
export interface SyncPlanView {
  readonly entity: string;
  /** The match key's fields; null when the entity has none (nothing would be matched). */
  readonly matchKey: ReadonlyArray<string> | null;
  readonly counts: {
    readonly matched: number;
    readonly toCreateRemotely: number;
    readonly toCreateLocally: number;
    readonly ambiguous: number;
  };
  readonly matched: ReadonlyArray<PlannedLocal & { readonly externalId: string; readonly key: string }>;
  readonly toCreateRemotely: ReadonlyArray<PlannedLocal>;
  readonly toCreateLocally: ReadonlyArray<{ readonly externalId: string }>;
  readonly ambiguous: ReadonlyArray<
    PlannedLocal & {
      readonly key: string;
      readonly reason: "vendor" | "local";
      readonly candidates: ReadonlyArray<{ readonly externalId: string; readonly fields: Record<string, unknown> }>;
    }
  >;
}

const local = (r: StoredRecord): PlannedLocal => ({ localId: r.localId, provisionalId: r.externalId });

export const toSyncPlanView = (entity: string, { matchKey, plan }: PlannedMatch): SyncPlanView => ({
  entity,
  matchKey,
  counts: {
    matched: plan.matched.length,
    toCreateRemotely: plan.toCreateRemotely.length,
    toCreateLocally: plan.toCreateLocally.length,
    ambiguous: plan.ambiguous.length,
  },
  matched: plan.matched.map((m) => ({ ...local(m.local), externalId: m.vendor.externalId, key: m.key })),
  toCreateRemotely: plan.toCreateRemotely.map(local),
  toCreateLocally: plan.toCreateLocally.map((v) => ({ externalId: v.externalId })),
  ambiguous: plan.ambiguous.map((a) => ({
    ...local(a.local),
    key: a.key,
    reason: a.reason,
    candidates: a.candidates.map((c) => ({ externalId: c.externalId, fields: c.data })),
  })),
});
