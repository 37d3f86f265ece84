import { randomUUID } from "node:crypto";
import type { Fields } from "@tandem/connector-sdk";
import { type ConflictInput, type ConflictPolicy, decide, threeWayMerge } from "@tandem/connector-sdk";
import { Context, Effect, Layer } from "effect";
import type { Selectable } from "kysely";
import { Database } from "../db/Database.ts";
import type { ConflictsTable } from "../db/schema.ts";
import { pageLimit, seqPage } from "../db/seqPage.ts";
import { InvalidInput, PreconditionFailed, ResourceNotFound } from "../errors/Errors.ts";
import { JobQueue } from "../queue/JobQueue.ts";
import { OutboundWebhooks } from "../webhooks/OutboundWebhooks.ts";

/** A conflict as the API shows it. */
export interface ConflictView {
  readonly id: string;
  readonly connectionId: string;
  readonly entity: string;
  readonly externalId: string;
  readonly status: "open" | "resolved";
  readonly fields: ReadonlyArray<string>;
  readonly base: Fields | null;
  readonly local: Fields;
  readonly remote: Fields;
  readonly policy: string;
  readonly resolution: Fields | null;
  readonly resolvedBy: string | null;
  readonly reason: string | null;
  readonly createdAt: string;
  readonly resolvedAt: string | null;
}

/** The outcome of settling one record's divergence. */
export type Settlement =
  | { readonly status: "merged"; readonly record: Record<string, unknown> }
  | { readonly status: "resolved"; readonly record: Record<string, unknown>; readonly conflictId: string }
  | { readonly status: "open"; readonly conflictId: string };

export interface SettleInput {
  readonly tenantId: string;
  readonly connectionId: string;
  readonly entity: string;
  readonly externalId: string;
  readonly base: Fields | null;
  readonly local: Fields;
  readonly remote: Fields;
  readonly localUpdatedAt: Date;
  readonly remoteUpdatedAt: Date;
}

/** How a person settles an open conflict through the API. */
export type ManualResolution =
  | { readonly choose: "local" | "remote" }
  | { readonly choose: "values"; readonly values: Record<string, unknown> };

const toView = (row: Selectable<ConflictsTable>): ConflictView => ({
  id: row.id,
  connectionId: row.connection_id,
  entity: row.entity,
  externalId: row.external_id,
  status: row.status,
  fields: row.fields,
  base: row.base,
  local: row.local,
  remote: row.remote,
  policy: row.policy,
  resolution: row.resolution,
  resolvedBy: row.resolved_by,
  reason: row.reason,
  createdAt: row.created_at.toISOString(),
  resolvedAt: row.resolved_at?.toISOString() ?? null,
});

const policyName = (policy: ConflictPolicy) => (policy.kind === "custom" ? `custom:${policy.name}` : policy.kind);

/**
 * Conflict detection and resolution with an audit trail. `settle` merges a local
 * and a remote version against their base; overlapping edits go to the entity's
 * policy. Every conflict is recorded with its resolution and who made it, and a
 * conflict the policy leaves open waits for `resolve`.
 */
export class Conflicts extends Context.Tag("@tandem/core/Conflicts")<
  Conflicts,
  {
    readonly settle: (input: SettleInput, policy: ConflictPolicy) => Effect.Effect<Settlement>;
    readonly list: (
      tenantId: string,
      filter: {
        readonly status?: "open" | "resolved";
        readonly connectionId?: string;
        readonly limit?: number;
        readonly cursor?: string;
      },
    ) => Effect.Effect<{ readonly items: ReadonlyArray<ConflictView>; readonly nextCursor: string | null }>;
    readonly get: (tenantId: string, id: string) => Effect.Effect<ConflictView, ResourceNotFound>;
    /** Settles an open conflict; returns the record to apply (and push). */
    readonly resolve: (
      tenantId: string,
      id: string,
      resolution: ManualResolution,
      actor: string,
    ) => Effect.Effect<
      { readonly conflict: ConflictView; readonly record: Record<string, unknown> },
      ResourceNotFound | PreconditionFailed | InvalidInput
    >;
  }
>() {
  static readonly layer = Layer.effect(
    Conflicts,
    Effect.gen(function* () {
      const db = yield* Database;
      const outbound = yield* OutboundWebhooks;

      const find = (tenantId: string, id: string) =>
        db
          .query((k) =>
            k
              .selectFrom("conflicts")
              .selectAll()
              .where("tenant_id", "=", tenantId)
              .where("id", "=", id)
              .executeTakeFirst(),
          )
          .pipe(
            Effect.orDie,
            Effect.flatMap((row) =>
              row ? Effect.succeed(row) : Effect.fail(new ResourceNotFound({ resource: "conflict", id })),
            ),
          );

      return {
        settle: Effect.fn("Conflicts.settle")(function* (input: SettleInput, policy: ConflictPolicy) {
          const { merged, conflicts } = threeWayMerge(input.base, input.local, input.remote);
          if (conflicts.length === 0) return { status: "merged", record: merged } satisfies Settlement;
          const conflictInput: ConflictInput = { ...input, merged, conflicts };
          const decision = yield* decide(policy, conflictInput);
          const id = randomUUID();
          const resolved = decision._tag === "Resolved";
          // The record of the conflict and its `conflict.detected` event commit together.
          const record = db
            .query((k) =>
              k
                .insertInto("conflicts")
                .values({
                  id,
                  tenant_id: input.tenantId,
                  connection_id: input.connectionId,
                  entity: input.entity,
                  external_id: input.externalId,
                  base: input.base === null ? null : JSON.stringify(input.base),
                  local: JSON.stringify(input.local),
                  remote: JSON.stringify(input.remote),
                  merged: JSON.stringify(merged),
                  fields: JSON.stringify(conflicts.map((c) => c.field)),
                  local_updated_at: input.localUpdatedAt,
                  remote_updated_at: input.remoteUpdatedAt,
                  policy: policyName(policy),
                  status: resolved ? "resolved" : "open",
                  resolution: resolved ? JSON.stringify(decision.values) : null,
                  resolved_by: resolved ? decision.resolvedBy : null,
                  reason: resolved ? null : decision.reason,
                  resolved_at: resolved ? new Date() : null,
                })
                .execute(),
            )
            .pipe(Effect.orDie);
          const detected = outbound.emit(input.tenantId, "conflict.detected", {
            conflictId: id,
            connectionId: input.connectionId,
            entity: input.entity,
            externalId: input.externalId,
            fields: conflicts.map((c) => c.field),
            policy: policyName(policy),
            status: resolved ? "resolved" : "open",
          });
          yield* db.transaction(Effect.zipRight(record, detected));
          return resolved
            ? ({ status: "resolved", record: { ...merged, ...decision.values }, conflictId: id } satisfies Settlement)
            : ({ status: "open", conflictId: id } satisfies Settlement);
        }),

        list: Effect.fn("Conflicts.list")(function* (tenantId, filter) {
          const limit = pageLimit(filter.limit);
          const rows = yield* db
            .query((k) => {
              let q = k.selectFrom("conflicts").selectAll().where("tenant_id", "=", tenantId);
              if (filter.status) q = q.where("status", "=", filter.status);
              if (filter.connectionId) q = q.where("connection_id", "=", filter.connectionId);
              if (filter.cursor) q = q.where("seq", ">", filter.cursor);
              return q
                .orderBy("seq")
                .limit(limit + 1)
                .execute();
            })
            .pipe(Effect.orDie);
          return seqPage(rows, limit, toView);
        }),

        get: Effect.fn("Conflicts.get")(function* (tenantId: string, id: string) {
          return toView(yield* find(tenantId, id));
        }),

        resolve: Effect.fn("Conflicts.resolve")(function* (
          tenantId: string,
          id: string,
          resolution: ManualResolution,
          actor: string,
        ) {
          return yield* db.transaction(
            Effect.gen(function* () {
              const row = yield* find(tenantId, id);
              if (row.status !== "open")
                return yield* new PreconditionFailed({ message: `conflict ${id} is already resolved` });
              const values =
                resolution.choose === "values"
                  ? resolution.values
                  : Object.fromEntries(
                      row.fields.map((f) => [f, (resolution.choose === "local" ? row.local : row.remote)[f]]),
                    );
              const missing = row.fields.filter((f) => !(f in values));
              const extra = Object.keys(values).filter((f) => !row.fields.includes(f));
              if (missing.length > 0 || extra.length > 0) {
                return yield* new InvalidInput({
                  issues: [
                    ...missing.map((f) => ({
                      path: `values.${f}`,
                      message: "a value is required for this conflicting field",
                    })),
                    ...extra.map((f) => ({ path: `values.${f}`, message: "not a conflicting field of this conflict" })),
                  ],
                });
              }
              // Only an open row is updated: two people resolving at once cannot both win.
              const updated = yield* db
                .query((k) =>
                  k
                    .updateTable("conflicts")
                    .set({
                      status: "resolved",
                      resolution: JSON.stringify(values),
                      resolved_by: actor,
                      resolved_at: new Date(),
                    })
                    .where("id", "=", id)
                    .where("status", "=", "open")
                    .returningAll()
                    .executeTakeFirst(),
                )
                .pipe(Effect.orDie);
              if (updated === undefined)
                return yield* new PreconditionFailed({ message: `conflict ${id} is already resolved` });
              return { conflict: toView(updated), record: { ...row.merged, ...values } };
            }),
          );
        }),
      };
    }),
  );

  /**
   * Conflicts with what `conflict.detected` needs: the outbox (OutboundWebhooks) and the queue
   * that delivers it (JobQueue, also the server's queue). Needs Database, CredentialCipher and
   * RetryPolicy. Pulls record conflicts, so every layer graph with a EntitySync has this below it.
   */
  static readonly layerWithOutbox = Conflicts.layer.pipe(
    Layer.provideMerge(OutboundWebhooks.layerNoDeps),
    Layer.provideMerge(JobQueue.layerNoDeps),
  );
}
