import {
  Conflicts,
  type ConflictView,
  Connections,
  EntitySync,
  InboundWebhooks,
  JobQueue,
  LocalChanges,
  type ManualResolution,
  parseEgressAllowList,
  Records,
  type RecordView,
  SyncJobHandlers,
  type SyncPlanView,
  SyncTriggers,
  toSyncPlanView,
} from "@tandem/core";
import { builtinConnectors } from "@tandem/server";
import { createTestConnection, testEngineLayer } from "@tandem/testkit";
import { type Effect as E, Effect, Either, Exit, Layer, Logger, LogLevel, ManagedRuntime, Scope } from "effect";
import { startTestServer, type TestServer } from "../support/server.ts";
import type { VendorFields, VendorNotification } from "./TwoWayVendor.ts";

/*
 * The host application's side of the two-way matrix: one connection's records, reached either
 * through the engine's services (in this process, the vendor over MSW) or through the API (the
 * typed client of a real server on loopback, the vendor served on loopback). The scenarios are
 * written once against `LocalConnection` and run over both.
 */

/** A record by the host's id or by the vendor's: exactly one of them. */
export type RecordRef = { readonly localId: string } | { readonly externalId: string };

export type EntitySettings = Record<string, unknown>;

export interface DeadPush {
  readonly id: string;
  readonly externalId: string | null;
  readonly operation: string;
  readonly error: string | null;
}

/** One connection, as the host application sees it. */
export interface LocalConnection {
  readonly connectionId: string;
  /** The URL the vendor posts this connection's webhooks to (it is part of some signatures). */
  readonly webhookUrl: string;
  readonly create: (localId: string, fields: VendorFields) => Promise<RecordView>;
  readonly update: (ref: RecordRef, fields: VendorFields) => Promise<RecordView>;
  readonly remove: (ref: RecordRef) => Promise<RecordView>;
  readonly get: (ref: RecordRef) => Promise<RecordView>;
  /** Every record of the entity, deleted ones included. */
  readonly all: () => Promise<ReadonlyArray<RecordView>>;
  readonly conflicts: () => Promise<ReadonlyArray<ConflictView>>;
  readonly resolve: (conflictId: string, resolution: ManualResolution) => Promise<void>;
  readonly settings: (entity: EntitySettings) => Promise<void>;
  readonly pause: () => Promise<void>;
  readonly resume: () => Promise<void>;
  /** A pull (the next delta, or a full read), run to its end. */
  readonly pull: (mode: "delta" | "full") => Promise<void>;
  readonly plan: (matchKey?: ReadonlyArray<string>) => Promise<SyncPlanView>;
  readonly deadPushes: () => Promise<ReadonlyArray<DeadPush>>;
  readonly discardDeadPush: (id: string) => Promise<void>;
  /** Delivers a webhook as the vendor does; answers the HTTP status (the intake's, in engine mode). */
  readonly deliver: (notification: VendorNotification) => Promise<number>;
  /**
   * Waits until nothing is queued or running for the connection and no record is pending (or,
   * with `pendingAllowed`, for the jobs only: a paused connection holds its pushes).
   */
  readonly quiet: (options?: { readonly pendingAllowed?: boolean }) => Promise<void>;
}

export interface LocalSide {
  readonly mode: "engine" | "api";
  readonly connect: (connector: string, entity: string, config: unknown) => Promise<LocalConnection>;
  readonly close: () => Promise<void>;
}

/** Extra hosts the engine may reach besides loopback: the LLM the matrix mocks. */
export const llmHost = "llm.twoway.test";
const egressAllow = `127.0.0.1,::1,localhost,${llmHost}`;
/**
 * No batching window: a drain is due at once, so the worker takes it on the wake-up of its enqueue
 * (a drain due later waits for the worker's next poll, 2 s on a server). Scenarios that need
 * several changes in one drain hold them back by pausing the connection.
 */
const pushIntervalMs = 0;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls until `check` holds twice in a row 100 ms apart (a queue that just emptied may be about to
 * take the next job), 30 s at most.
 */
const until = async (what: string, check: () => Promise<boolean>) => {
  const deadline = Date.now() + 30_000;
  let streak = 0;
  while (streak < 2) {
    if (Date.now() > deadline) throw new Error(`not within 30 s: ${what}`);
    streak = (await check()) ? streak + 1 : 0;
    await sleep(100);
  }
};

const refOf = (ref: RecordRef) => ("localId" in ref ? { localId: ref.localId } : { externalId: ref.externalId });

/** Through the typed client of a real server on loopback (PostgreSQL); the vendor must be served on loopback. */
export const apiSide = async (): Promise<LocalSide> => {
  const t: TestServer = await startTestServer("postgres", {
    TANDEM_EGRESS_ALLOW: egressAllow,
    TANDEM_PUSH_INTERVAL_MS: String(pushIntervalMs),
    TANDEM_MAX_ATTEMPTS: "3",
    TANDEM_MAX_BACKOFF_MS: "200",
  });
  // One tenant: each scenario's connection is its own, and every read below is by connection.
  const admin = t.client(t.adminKey);
  const tenant = await admin.tenants.create.mutate({ name: "matrix" });
  const c = t.client((await admin.apiKeys.create.mutate({ tenantId: tenant.id, name: "k" })).key);
  // Connection names are unique per tenant.
  let connections = 0;
  return {
    mode: "api",
    close: () => t.close(),
    connect: async (connector, entity, config) => {
      const { id: connectionId } = await c.connections.create.mutate({
        connector,
        name: `matrix-${++connections}`,
        config: config as Record<string, unknown>,
      });
      const scope = { connectionId, entity };
      const jobsActive = async () => {
        for (const status of ["queued", "running"] as const) {
          if ((await c.jobs.list.query({ connectionId, status, limit: 1 })).length > 0) return true;
        }
        return false;
      };
      const self: LocalConnection = {
        connectionId,
        webhookUrl: `${t.server.url}/webhooks/${connector}/${connectionId}`,
        create: (localId, fields) => c.records.create.mutate({ ...scope, localId, fields: { ...fields } }),
        update: (ref, fields) => c.records.update.mutate({ ...scope, ...refOf(ref), fields: { ...fields } }),
        remove: (ref) => c.records.delete.mutate({ ...scope, ...refOf(ref) }),
        get: (ref) => c.records.get.query({ ...scope, ...refOf(ref) }),
        all: async () => {
          const items: Array<RecordView> = [];
          let cursor: string | undefined;
          for (;;) {
            const page = await c.records.list.query({ ...scope, includeDeleted: true, limit: 500, cursor });
            items.push(...page.items);
            if (!page.hasMore) return items;
            cursor = page.cursor;
          }
        },
        conflicts: async () => (await c.conflicts.list.query({ connectionId, limit: 500 })).items,
        resolve: async (id, resolution) => {
          await c.conflicts.resolve.mutate({ id, resolution: resolution as never });
        },
        settings: async (settings) => {
          await c.connections.settings.set.mutate({ id: connectionId, entities: { [entity]: settings } });
        },
        pause: async () => {
          await c.sync.pause.mutate({ connectionId });
        },
        resume: async () => {
          await c.sync.resume.mutate({ connectionId });
        },
        pull: async (mode) => {
          const { jobId } = await c.sync.trigger.mutate({ ...scope, mode });
          await until(`the ${mode} pull`, async () => {
            const { job } = await c.jobs.get.query({ id: jobId });
            if (job.status === "dead" || job.status === "cancelled") throw new Error(`the ${mode} pull ${job.status}`);
            return job.status === "completed";
          });
        },
        plan: (matchKey) => c.sync.plan.query({ ...scope, ...(matchKey ? { matchKey: [...matchKey] } : {}) }),
        deadPushes: () => c.sync.deadPushes.list.query({ connectionId }),
        discardDeadPush: async (id) => {
          await c.sync.deadPushes.discard.mutate({ id });
        },
        deliver: async (n) => {
          const response = await fetch(self.webhookUrl, { method: n.method, headers: n.headers, body: n.body });
          await response.arrayBuffer();
          return response.status;
        },
        quiet: (options) =>
          until("the connection quiet", async () => {
            if (await jobsActive()) return false;
            return options?.pendingAllowed === true || !(await self.all()).some((r) => r.syncStatus === "pending");
          }),
      };
      return self;
    },
  };
};

/** Through the engine's services in this process (PostgreSQL), with the queue's worker running as a server's does. */
export const engineSide = async (): Promise<LocalSide> => {
  const allow = Either.getOrThrow(parseEgressAllowList(egressAllow));
  const runtime = ManagedRuntime.make(
    testEngineLayer({
      dialect: "postgres",
      connectors: builtinConnectors,
      config: {
        egress: { allow },
        push: { intervalMs: pushIntervalMs },
        retry: { baseDelayMs: 50, maxDelayMs: 200, defaultMaxAttempts: 3 },
      },
    }).pipe(
      // Warnings and errors only, as the API side's server logs (each job's completion is logged at info).
      Layer.provideMerge(Logger.minimumLogLevel(LogLevel.Warning)),
    ),
  );
  const run = <A, Err>(effect: E.Effect<A, Err, any>): Promise<A> => runtime.runPromise(effect as E.Effect<A, Err>);
  const workerScope = await Effect.runPromise(Scope.make());
  await run(
    Effect.gen(function* () {
      const handlers = (yield* SyncJobHandlers).handlers;
      yield* Scope.extend((yield* JobQueue).worker({ handlers, pollMs: 50 }), workerScope);
    }),
  );
  return {
    mode: "engine",
    close: async () => {
      await Effect.runPromise(Scope.close(workerScope, Exit.void));
      await runtime.dispose();
    },
    connect: async (connector, entity, config) => {
      const { tenantId, connectionId } = await run(createTestConnection(connector, config));
      const target = { tenantId, connectionId, entity };
      const scope = { connectionId, entity };
      const records = <A, Err>(f: (r: E.Effect.Success<typeof Records>) => E.Effect<A, Err>) =>
        run(Effect.flatMap(Records, f));
      const self: LocalConnection = {
        connectionId,
        webhookUrl: `https://tandem.twoway.test/webhooks/${connector}/${connectionId}`,
        create: (localId, fields) => records((r) => r.create(tenantId, { ...scope, localId, fields: { ...fields } })),
        update: (ref, fields) => records((r) => r.update(tenantId, { ...scope, ...refOf(ref), fields: { ...fields } })),
        remove: (ref) => records((r) => r.delete(tenantId, { ...scope, ...refOf(ref) })),
        get: (ref) => records((r) => r.get(tenantId, { ...scope, ...refOf(ref) })),
        all: async () => {
          const items: Array<RecordView> = [];
          let cursor: string | undefined;
          for (;;) {
            const page = await records((r) => r.list(tenantId, { ...scope, includeDeleted: true, limit: 500, cursor }));
            items.push(...page.items);
            if (!page.hasMore) return items;
            cursor = page.cursor;
          }
        },
        conflicts: () =>
          run(Effect.flatMap(Conflicts, (c) => c.list(tenantId, { connectionId, limit: 500 }))).then((p) => p.items),
        resolve: async (id, resolution) => {
          await records((r) => r.resolveConflict(tenantId, id, resolution, "matrix"));
        },
        settings: async (settings) => {
          await run(Effect.flatMap(Connections, (c) => c.setSettings(tenantId, connectionId, { [entity]: settings })));
        },
        pause: async () => {
          await run(Effect.flatMap(SyncTriggers, (s) => s.setPaused(tenantId, connectionId, true)));
        },
        resume: async () => {
          await run(Effect.flatMap(SyncTriggers, (s) => s.setPaused(tenantId, connectionId, false)));
        },
        pull: async (mode) => {
          await run(Effect.flatMap(EntitySync, (e) => e.run({ ...target, mode })));
        },
        plan: (matchKey) =>
          run(
            Effect.flatMap(EntitySync, (e) => e.plan(target, matchKey ? { matchKey } : {})).pipe(
              Effect.map((planned) => toSyncPlanView(entity, planned)),
            ),
          ),
        deadPushes: () => run(Effect.flatMap(LocalChanges, (l) => l.deadPushes(tenantId, { connectionId }))),
        discardDeadPush: async (id) => {
          await run(Effect.flatMap(LocalChanges, (l) => l.discardDeadPush(tenantId, id)));
        },
        deliver: (n) =>
          run(
            Effect.flatMap(InboundWebhooks, (w) =>
              w.receive(connector, connectionId, {
                method: n.method,
                url: self.webhookUrl,
                headers: new Headers(n.headers),
                rawBody: n.body,
              }),
            ).pipe(
              Effect.as(200),
              Effect.catchTags({
                WebhookRejected: () => Effect.succeed(401),
                MalformedWebhook: () => Effect.succeed(400),
              }),
            ),
          ),
        quiet: (options) =>
          until("the connection quiet", async () => {
            const counts = await run(Effect.flatMap(JobQueue, (q) => q.counts({ connectionId })));
            if ((counts.queued ?? 0) + (counts.running ?? 0) > 0) return false;
            return options?.pendingAllowed === true || !(await self.all()).some((r) => r.syncStatus === "pending");
          }),
      };
      return self;
    },
  };
};
