import { Effect } from "effect";
import type { FieldConflict, Fields } from "./ConflictMerge.ts";

/** What a policy sees of a conflict. */
export interface ConflictInput {
  readonly entity: string;
  readonly externalId: string;
  readonly base: Fields | null;
  readonly local: Fields;
  readonly remote: Fields;
  readonly localUpdatedAt: Date;
  readonly remoteUpdatedAt: Date;
  /** The fields that merged cleanly. */
  readonly merged: Fields;
  /** The fields both sides changed differently. */
  readonly conflicts: ReadonlyArray<FieldConflict>;
}

/** A policy's answer: values for the conflicting fields, or "leave it to a person". */
export type PolicyDecision =
  | { readonly _tag: "Resolved"; readonly values: Record<string, unknown>; readonly resolvedBy: string }
  | { readonly _tag: "Manual"; readonly reason: string };

/** A resolver function for the `custom` policy: plain async or Effect. */
export type CustomResolver = (
  input: ConflictInput,
) => Promise<PolicyDecision> | Effect.Effect<PolicyDecision, never, never>;

/**
 * How an entity settles overlapping edits (non-overlapping ones always merge):
 * - `last-write-wins`: the side modified last wins every conflicting field; with a
 *   `clockSkewToleranceMs`, the local side wins only when it is later by more than that (the two
 *   clocks are not the same clock: within the tolerance, the remote wins as on a tie);
 * - `source-priority`: each field has an owner (`local` or `remote`), else `default`;
 * - `manual`: a conflict row waits for `conflicts.resolve`;
 * - `custom`: a function decides (see `llmResolver` for one over an LLM).
 */
export type ConflictPolicy =
  | { readonly kind: "last-write-wins"; readonly clockSkewToleranceMs?: number | undefined }
  | {
      readonly kind: "source-priority";
      readonly default: "local" | "remote";
      readonly fieldOwners?: Readonly<Record<string, "local" | "remote">>;
    }
  | { readonly kind: "manual" }
  | { readonly kind: "custom"; readonly name: string; readonly resolve: CustomResolver };

const pick = (input: ConflictInput, side: (field: string) => "local" | "remote") =>
  Object.fromEntries(input.conflicts.map((c) => [c.field, side(c.field) === "local" ? c.local : c.remote]));

/** Applies a policy to a conflict. Never fails: a resolver that breaks yields Manual. */
export const decide = (policy: ConflictPolicy, input: ConflictInput): Effect.Effect<PolicyDecision> => {
  switch (policy.kind) {
    case "last-write-wins": {
      // Ties go to the remote: it is the system of record for what it already published.
      const tolerance = policy.clockSkewToleranceMs ?? 0;
      const winner = input.localUpdatedAt.getTime() > input.remoteUpdatedAt.getTime() + tolerance ? "local" : "remote";
      return Effect.succeed({
        _tag: "Resolved",
        values: pick(input, () => winner),
        resolvedBy: `policy:last-write-wins:${winner}`,
      });
    }
    case "source-priority":
      return Effect.succeed({
        _tag: "Resolved",
        values: pick(input, (field) => policy.fieldOwners?.[field] ?? policy.default),
        resolvedBy: "policy:source-priority",
      });
    case "manual":
      return Effect.succeed({ _tag: "Manual", reason: "policy is manual review" });
    case "custom": {
      const run = Effect.suspend(() => {
        const result = policy.resolve(input);
        return Effect.isEffect(result) ? result : Effect.promise(() => result);
      });
      return run.pipe(
        Effect.catchAllDefect((defect) =>
          Effect.succeed<PolicyDecision>({
            _tag: "Manual",
            reason: `resolver ${policy.name} failed: ${defect instanceof Error ? defect.message : String(defect)}`,
          }),
        ),
      );
    }
  }
};
