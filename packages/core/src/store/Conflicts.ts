import type { ConflictPolicy, Fields } from "@tandem/connector-sdk";
import { Context, Effect, Layer } from "effect";
import { Database } from "../db/Database.ts";
import { pageLimit, seqPage } from "../db/seqPage.ts";
import type { InvalidInput, PreconditionFailed, ResourceNotFound } from "../errors/Errors.ts";
import { OutboundWebhooks } from "../webhooks/OutboundWebhooks.ts";
import { type ConflictRow, listConflicts } from "./ConflictRows.ts";
import { findOwnConflict, resolveConflict } from "./resolveConflict.ts";
import { settleConflict } from "./settleConflict.ts";

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

const toView = (row: ConflictRow): ConflictView => ({
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
  /** Conflicts over the Database, emitting `conflict.detected` through the outbox. */
  static readonly make = Effect.gen(function* () {
    const db = yield* Database;
    const outbound = yield* OutboundWebhooks;
    return {
      settle: Effect.fn("Conflicts.settle")((input: SettleInput, policy: ConflictPolicy) =>
        settleConflict({ db, outbound }, input, policy),
      ),
      list: Effect.fn("Conflicts.list")(function* (tenantId, filter) {
        const limit = pageLimit(filter.limit);
        const rows = yield* db.query((k) => listConflicts(k, tenantId, filter, limit)).pipe(Effect.orDie);
        return seqPage([...rows], limit, toView);
      }),
      get: Effect.fn("Conflicts.get")(function* (tenantId: string, id: string) {
        return toView(yield* findOwnConflict(db, tenantId, id));
      }),
      resolve: Effect.fn("Conflicts.resolve")(function* (tenantId, id, resolution, actor) {
        const { row, record } = yield* resolveConflict(db, tenantId, id, resolution, actor);
        return { conflict: toView(row), record };
      }),
    } satisfies Context.Tag.Service<Conflicts>;
  });

  /** Conflicts, needing the Database and OutboundWebhooks. */
  static readonly layerNoDeps = Layer.effect(Conflicts, Conflicts.make);

  /**
   * Conflicts with what `conflict.detected` needs: the outbox (OutboundWebhooks) and the queue
   * that delivers it (JobQueue). Leaves the roots (Database, CredentialCipher, EgressPolicy,
   * RetryPolicy) to the composition.
   */
  static readonly layer = Conflicts.layerNoDeps.pipe(Layer.provide(OutboundWebhooks.layer));
}
