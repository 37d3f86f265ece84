import { randomUUID } from "node:crypto";
import { type ConflictInput, type ConflictPolicy, decide, threeWayMerge } from "@tandem/connector-sdk";
import { type Context, Effect } from "effect";
import type { Database } from "../db/Database.ts";
import type { OutboundWebhooks } from "../webhooks/OutboundWebhooks.ts";
import { insertConflict, supersedeOpen } from "./ConflictRows.ts";
import type { SettleInput, Settlement } from "./Conflicts.ts";

export interface SettleConflictDeps {
  readonly db: Context.Tag.Service<Database>;
  readonly outbound: Context.Tag.Service<OutboundWebhooks>;
}

const policyName = (policy: ConflictPolicy) => (policy.kind === "custom" ? `custom:${policy.name}` : policy.kind);

/**
 * Merges a local and a remote version against their base; overlapping edits go to the entity's
 * policy, and the conflict is recorded (resolved by the policy, or open) with its
 * `conflict.detected` event, in one transaction.
 */
export const settleConflict = (
  deps: SettleConflictDeps,
  input: SettleInput,
  policy: ConflictPolicy,
): Effect.Effect<Settlement> =>
  Effect.gen(function* () {
    const { merged, conflicts } = threeWayMerge(input.base, input.local, input.remote);
    if (conflicts.length === 0) return { status: "merged", record: merged } satisfies Settlement;
    const conflictInput: ConflictInput = { ...input, merged, conflicts };
    const decision = yield* decide(policy, conflictInput);
    const id = randomUUID();
    const resolved = decision._tag === "Resolved";
    // The record of the conflict and its `conflict.detected` event commit together; it replaces
    // the record's conflicts still open (decided against an older remote version).
    const at = new Date();
    const record = deps.db
      .query(async (k) => {
        await supersedeOpen(k, input, id, at);
        await insertConflict(k, {
          id,
          tenantId: input.tenantId,
          connectionId: input.connectionId,
          entity: input.entity,
          externalId: input.externalId,
          base: input.base,
          local: input.local,
          remote: input.remote,
          merged,
          fields: conflicts.map((c) => c.field),
          localUpdatedAt: input.localUpdatedAt,
          remoteUpdatedAt: input.remoteUpdatedAt,
          policy: policyName(policy),
          outcome: resolved
            ? { resolved: true, values: decision.values, resolvedBy: decision.resolvedBy, at }
            : { resolved: false, reason: decision.reason },
        });
      })
      .pipe(Effect.orDie);
    const detected = deps.outbound.emit(input.tenantId, "conflict.detected", {
      conflictId: id,
      connectionId: input.connectionId,
      entity: input.entity,
      externalId: input.externalId,
      fields: conflicts.map((c) => c.field),
      policy: policyName(policy),
      status: resolved ? "resolved" : "open",
    });
    yield* deps.db.transaction(Effect.zipRight(record, detected));
    return resolved
      ? ({ status: "resolved", record: { ...merged, ...decision.values }, conflictId: id } satisfies Settlement)
      : ({ status: "open", conflictId: id } satisfies Settlement);
  });
