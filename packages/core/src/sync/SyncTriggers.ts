import { Context, Effect, Layer } from "effect";
import { type AlreadyRunning, InvalidInput, PreconditionFailed, type ResourceNotFound } from "../errors/Errors.ts";
import { JobQueue } from "../queue/JobQueue.ts";
import { syncLockKey } from "../queue/Locks.ts";
import { RetryPolicy } from "../queue/RetryPolicy.ts";
import { Scheduler, type ScheduleView, SYNC_JOB_KIND, type SyncJobPayload } from "../queue/Scheduler.ts";
import { Connections } from "../tenancy/Connections.ts";
import { type EffectiveEntitySettings, effectiveEntitySettings } from "../tenancy/syncSettings.ts";
import type { SyncMode } from "./EntitySync.ts";
import { pullsRun } from "./entitySettings.ts";
import { LocalChanges } from "./LocalChanges.ts";
import { localChangeIssues } from "./push/localChangeFields.ts";
import { reconcileCadenceOf } from "./reconcileCadence.ts";

/** A sync job's payload, as schedules write it, plus who asked (schedules leave it out). */
export type TriggeredSyncPayload = SyncJobPayload & { readonly trigger?: string };

/** A local change to one record: the fields the host application changed. */
export interface LocalChange {
  readonly externalId: string;
  readonly fields: Record<string, unknown>;
}

export interface SyncTriggersDeps {
  readonly connections: Context.Tag.Service<Connections>;
  readonly queue: Context.Tag.Service<JobQueue>;
  readonly scheduler: Context.Tag.Service<Scheduler>;
  readonly policy: Context.Tag.Service<RetryPolicy>;
  readonly local: Context.Tag.Service<LocalChanges>;
}

/** The connection, when its connector has `entity`; a clear InvalidInput otherwise. */
const connectionWithEntity = (
  { connections }: SyncTriggersDeps,
  tenantId: string,
  connectionId: string,
  entity: string,
) =>
  Effect.gen(function* () {
    const resolved = yield* connections.resolve(tenantId, connectionId);
    if (!(entity in resolved.connector.entities)) {
      return yield* new InvalidInput({
        issues: [
          {
            path: "entity",
            message: `connector ${resolved.connector.name} has no entity "${entity}"; it has ${Object.keys(resolved.connector.entities).join(", ")}`,
          },
        ],
      });
    }
    return resolved;
  });

/**
 * Queues an on-demand sync: one live sync job per connection x entity; a paused connection
 * refuses. A push is the outbox's drain, asked for now (pushes also run by themselves).
 */
export const queueSync = (
  deps: SyncTriggersDeps,
  tenantId: string,
  input: { readonly connectionId: string; readonly entity: string; readonly mode: SyncMode; readonly trigger?: string },
) =>
  Effect.gen(function* () {
    const { queue, policy } = deps;
    if (input.mode === "push") return yield* deps.local.pushNow(tenantId, input);
    const resolved = yield* connectionWithEntity(deps, tenantId, input.connectionId, input.entity);
    if (resolved.row.paused) {
      return yield* new PreconditionFailed({
        message: `connection ${input.connectionId} is paused; resume it first`,
      });
    }
    const payload: TriggeredSyncPayload = {
      connectionId: input.connectionId,
      entity: input.entity,
      mode: input.mode,
      trigger: input.trigger ?? "api",
    };
    const { id } = yield* queue.enqueue({
      kind: SYNC_JOB_KIND,
      payload,
      priority: "onDemand",
      tenantId,
      connectionId: input.connectionId,
      maxAttempts: policy.maxAttemptsFor(resolved.connector.name),
      dedupeKey: syncLockKey(input.connectionId, input.entity),
    });
    return { jobId: id, status: "queued" as const };
  });

/**
 * Local changes to several records (`sync.push`): every change validated first (a refusal names
 * `changes.<index>.fields.<field>` and stores nothing), then each stored with its outbox entry
 * (see LocalChanges.update); pushes run by themselves.
 */
export const pushLocalChanges = (
  deps: SyncTriggersDeps,
  tenantId: string,
  input: { readonly connectionId: string; readonly entity: string; readonly changes: ReadonlyArray<LocalChange> },
) =>
  Effect.gen(function* () {
    const { local } = deps;
    const resolved = yield* connectionWithEntity(deps, tenantId, input.connectionId, input.entity);
    const entity = resolved.connector.entities[input.entity]!;
    const issues = input.changes.flatMap((change, i) =>
      localChangeIssues(
        {
          connector: resolved.connector.name,
          entityName: input.entity,
          entity,
          operation: "update",
          fields: change.fields,
        },
        ["changes", String(i), "fields"],
      ),
    );
    if (issues.length > 0) return yield* new InvalidInput({ issues: issues.slice(0, 20) });
    return yield* Effect.forEach(input.changes, (change, i) =>
      local
        .update(
          tenantId,
          {
            connectionId: input.connectionId,
            entity: input.entity,
            externalId: change.externalId,
            fields: change.fields,
          },
          ["changes", String(i), "fields"],
        )
        .pipe(
          Effect.map((edit) => ({
            externalId: change.externalId,
            syncStatus: edit.record.syncStatus,
            immediate: edit.immediate,
          })),
        ),
    );
  });

/** A connection's own schedules of one entity: a cron, or null for none; an absent field keeps the default. */
export interface EntitySchedules {
  readonly deltaCron?: string | null | undefined;
  readonly reconcileCron?: string | null | undefined;
}

/**
 * The schedules an entity's settings ask for: none when it is disabled or push-only, else the
 * crons the connection set (absent: the defaults).
 */
const schedulesOfSettings = (settings: EffectiveEntitySettings): EntitySchedules => {
  if (!pullsRun(settings)) return { deltaCron: null, reconcileCron: null };
  return {
    ...(settings.sources["schedules.delta"] === "set" ? { deltaCron: settings.schedules.delta } : {}),
    ...(settings.sources["schedules.reconcile"] === "set" ? { reconcileCron: settings.schedules.reconcile } : {}),
  };
};

/**
 * Creates the delta and reconciliation schedules of every entity of a connection. By default a
 * delta every 15 minutes, and a reconciliation whose cadence follows the entity's flags (see
 * `reconcileCadenceOf`): daily, or the weekly safety net when deletions arrive by delta or
 * webhook, none without `readIds`. `overrides` (by entity) replace the defaults for this
 * connection: a cron of its own, or null for no such schedule.
 */
export const setupSyncSchedules = (
  deps: SyncTriggersDeps,
  tenantId: string,
  connectionId: string,
  overrides: Readonly<Record<string, EntitySchedules>> = {},
) =>
  Effect.gen(function* () {
    const { connections, scheduler, policy } = deps;
    const resolved = yield* connections.resolve(tenantId, connectionId);
    const entities = resolved.connector.entities;
    const unknown = Object.keys(overrides).filter((entity) => !(entity in entities));
    if (unknown.length > 0) {
      return yield* new InvalidInput({
        issues: unknown.map((entity) => ({
          path: `schedules.${entity}`,
          message: `connector ${resolved.connector.name} has no entity "${entity}"`,
        })),
      });
    }
    const views: Array<ScheduleView> = [];
    for (const [entity, definition] of Object.entries(entities)) {
      const cadence = reconcileCadenceOf(definition);
      const own = { ...schedulesOfSettings(effectiveEntitySettings(resolved, entity)!), ...overrides[entity] };
      const set = yield* scheduler
        .ensureSyncSchedules({
          connectionId,
          entity,
          tenantId,
          deltaCron: own.deltaCron,
          reconcileCron: own.reconcileCron !== undefined ? own.reconcileCron : cadence === "none" ? null : undefined,
          reconcileCadence: cadence === "none" ? undefined : cadence,
          maxAttempts: policy.maxAttemptsFor(resolved.connector.name),
        })
        .pipe(
          Effect.mapError(
            (e) => new InvalidInput({ issues: e.issues.map((i) => ({ ...i, path: `schedules.${entity}.${i.path}` })) }),
          ),
        );
      views.push(...set);
    }
    return views;
  });

/**
 * What starts syncs: on-demand triggers (queued as durable jobs), pushes of local changes,
 * the default schedules of a connection, and pause/resume. The job handlers run what this
 * queues (SyncJobHandlers); the status read model reports on it (SyncStatus).
 */
export class SyncTriggers extends Context.Tag("@tandem/core/SyncTriggers")<
  SyncTriggers,
  {
    readonly trigger: (
      tenantId: string,
      input: {
        readonly connectionId: string;
        readonly entity: string;
        readonly mode: SyncMode;
        readonly trigger?: string;
      },
    ) => Effect.Effect<
      { readonly jobId: string; readonly status: "queued" },
      ResourceNotFound | InvalidInput | AlreadyRunning | PreconditionFailed
    >;
    readonly push: (
      tenantId: string,
      input: { readonly connectionId: string; readonly entity: string; readonly changes: ReadonlyArray<LocalChange> },
    ) => Effect.Effect<
      ReadonlyArray<{ readonly externalId: string; readonly syncStatus: string; readonly immediate: boolean }>,
      ResourceNotFound | InvalidInput | PreconditionFailed
    >;
    readonly setPaused: (
      tenantId: string,
      connectionId: string,
      paused: boolean,
    ) => Effect.Effect<{ readonly paused: boolean }, ResourceNotFound>;
    /**
     * Creates the delta and reconciliation schedules of every entity of a connection: the
     * defaults (the reconciliation's following the entity's `deletes`/`webhooks` flags), or the
     * connection's own crons in `overrides` (by entity; null: no such schedule).
     */
    readonly setupSchedules: (
      tenantId: string,
      connectionId: string,
      overrides?: Readonly<Record<string, EntitySchedules>>,
    ) => Effect.Effect<ReadonlyArray<ScheduleView>, ResourceNotFound | InvalidInput>;
  }
>() {
  /** Needs Connections, JobQueue, Scheduler, RetryPolicy and LocalChanges. */
  static readonly layerNoDeps = Layer.effect(
    SyncTriggers,
    Effect.gen(function* () {
      const deps: SyncTriggersDeps = {
        connections: yield* Connections,
        queue: yield* JobQueue,
        scheduler: yield* Scheduler,
        policy: yield* RetryPolicy,
        local: yield* LocalChanges,
      };
      return SyncTriggers.of({
        trigger: Effect.fn("SyncTriggers.trigger")((tenantId, input) => queueSync(deps, tenantId, input)),
        push: Effect.fn("SyncTriggers.push")((tenantId, input) => pushLocalChanges(deps, tenantId, input)),
        setPaused: Effect.fn("SyncTriggers.setPaused")(function* (tenantId, connectionId, paused) {
          // Schedules skip paused connections; triggers refuse them. One flag, on the connection.
          const updated = yield* deps.connections
            .update(tenantId, connectionId, { paused })
            .pipe(Effect.catchTags({ InvalidInput: Effect.die, AlreadyExists: Effect.die }));
          // Drains skip a paused connection's entries: they wait, and go once it is resumed.
          if (!updated.paused) yield* deps.local.wakeDrains(tenantId, connectionId);
          return { paused: updated.paused };
        }),
        setupSchedules: Effect.fn("SyncTriggers.setupSchedules")((tenantId, connectionId, overrides) =>
          setupSyncSchedules(deps, tenantId, connectionId, overrides),
        ),
      });
    }),
  );

  /** Needs the roots (RetryPolicy and those below Connections, JobQueue and LocalChanges). */
  static readonly layer = SyncTriggers.layerNoDeps.pipe(
    Layer.provide(Layer.mergeAll(Connections.layer, JobQueue.layer, Scheduler.layer, LocalChanges.layer)),
  );
}
