import { randomUUID } from "node:crypto";
import {
  type AnyConnector,
  type ConnectorContext,
  type ConnectorError,
  type EntityDefinition,
  type ReadPage,
  rateLimitPolicyOf,
  Unavailable,
} from "@tandem/connector-sdk";
import {
  callConnector,
  type DecodedRecord,
  decodeRecord,
  RateBudget,
  sourceStream,
} from "@tandem/connector-sdk/runtime";
import { Chunk, Clock, Context, Effect, Either, Fiber, Layer, Option, Schema, Stream } from "effect";
import { ConnectorCredentials } from "../connector/ConnectorCredentials.ts";
import { Database } from "../db/Database.ts";
import { ResourceNotFound } from "../errors/Errors.ts";
import { Conflicts } from "../store/Conflicts.ts";
import {
  type Checkpoint,
  type CheckpointUpdate,
  type ExportFormat,
  type IncomingRecord,
  type RecordScope,
  RecordStore,
  type StoredRecord,
  type UpsertResult,
} from "../store/RecordStore.ts";
import { Connections } from "../tenancy/Connections.ts";
import { settleHeldBack } from "./PullSettlement.ts";
import type { SyncItemError, SyncResult } from "./SyncJob.ts";

/** Which entity of which connection. */
export interface SyncTarget {
  readonly tenantId: string;
  readonly connectionId: string;
  readonly entity: string;
}

/** What a run does: read everything, read changes, compare ids, or push local changes. */
export type SyncMode = "full" | "delta" | "reconcile" | "push";

/** Tuning of one run; every field has a default. */
export interface SyncRunOptions {
  /** Records per checkpoint, and per upsert statement up to `writeConcurrency` splits. Default 500. */
  readonly batchSize?: number;
  /**
   * A batch of at least `writeConcurrency` x 1,000 records (a large page) is written as that many
   * statements at once, on separate connections, then checkpointed: the database's work per row
   * is most of an import's time and spreads over its cores. Default 2.
   */
  readonly writeConcurrency?: number;
  /** Delta reads start this long before the stored cursor (clock skew, late commits). Default 5 minutes. */
  readonly overlapMs?: number;
  /** Reconciliation deletes at most this share of the stored records; above it, it quarantines. Default 0.2. */
  readonly maxDeleteShare?: number;
  /** Deletes even above `maxDeleteShare` (an operator confirmed the quarantine). Default false. */
  readonly allowMassDeletion?: boolean;
  /** A read longer than this many pages is failed as runaway. Default 1,000,000. */
  readonly maxPages?: number;
  /** Concurrent `get`/`write` calls (reconcile fetches, pushes). Default 4. */
  readonly concurrency?: number;
  /** A read that produces no page for this long fails as Unavailable (a hung connector). Default 5 minutes. */
  readonly pageTimeoutMs?: number;
  /** Item errors listed in a result; beyond it they are counted in one summary entry. Default 1,000. */
  readonly maxItemErrors?: number;
  /**
   * Called after each stored batch (full and delta) with the run's totals so far:
   * live progress for `jobs.watch`. Its failures are the caller's, not the run's.
   */
  readonly onProgress?: (progress: SyncProgress) => Effect.Effect<void>;
}

/** A running sync's totals so far. */
export interface SyncProgress {
  readonly phase: "reading" | "done";
  readonly pages: number;
  readonly created: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly deleted: number;
  readonly errors: number;
}

/** What reconciliation would have deleted when the mass-deletion guard stopped it. */
export interface Quarantine {
  readonly at: string;
  readonly wouldDelete: number;
  readonly stored: number;
  readonly share: number;
  readonly sample: ReadonlyArray<string>;
}

/** A run's result: the SyncJob result plus what this mode reports. */
export interface SyncRunResult extends SyncResult {
  readonly mode: SyncMode;
  readonly pages: number;
  /** The run continued from the checkpoint of an interrupted run. */
  readonly resumed: boolean;
  /** Reconciliation stopped by the mass-deletion guard (nothing was deleted). */
  readonly quarantine?: Quarantine;
  /** Delta cursor after the run (full and delta). */
  readonly deltaCursor?: string | null;
}

/** What testing a connection found (see `EntitySync.check`). */
export interface ConnectionCheck {
  readonly ok: boolean;
  /** False when the connector has no check: nothing was called. */
  readonly checked: boolean;
  /** Why the check failed: the connector's error reason (AuthExpired, Unavailable, ...) and message. */
  readonly error?: { readonly type: string; readonly message: string };
}

/** A connector broke the page contract: not `{ records: [], cursor? }`, or a cursor that repeats. */
export class InvalidPage extends Schema.TaggedError<InvalidPage>()("InvalidPage", {
  connector: Schema.String,
  entity: Schema.String,
  message: Schema.String,
}) {}

/** The connector has no such entity, or the entity lacks what the operation needs (`get`, `write`, ...). */
export class EntityNotSupported extends Schema.TaggedError<EntityNotSupported>()("EntityNotSupported", {
  connector: Schema.String,
  entity: Schema.String,
  message: Schema.String,
}) {}

/** What a run can fail with (item errors are in the result instead). */
export type SyncRunError = ConnectorError | InvalidPage | EntityNotSupported | ResourceNotFound;

/** What a webhook-triggered single-record sync did. */
export interface SyncRecordResult {
  readonly action: "created" | "updated" | "unchanged" | "deleted" | "failed";
  readonly externalId: string;
  readonly error?: SyncItemError;
}

/** An inbound event about one record (from a connector's `webhooks.parse`). */
export interface RecordEvent {
  readonly externalId: string;
  readonly kind?: "created" | "updated" | "deleted" | "merged" | "restored";
  /** When the change happened at the source: a delete event older than the stored record is ignored. */
  readonly occurredAt?: Date;
}

/** Batch import: how to split and what to do with invalid records. */
export interface ImportOptions {
  /** Records per batch. Default 500. */
  readonly batchSize?: number;
  /** Batches validated concurrently. Default 4. */
  readonly concurrency?: number;
  /**
   * "all-or-nothing" (default): any invalid record and nothing is committed.
   * "skip-invalid": valid records are committed, invalid ones reported.
   */
  readonly onInvalid?: "all-or-nothing" | "skip-invalid";
}

/** Batch import result: the run result, and whether anything was committed. */
export interface ImportResult extends SyncResult {
  readonly committed: boolean;
  readonly batches: number;
}

/** A local change: stored, and pushed at once when it touches a critical field. */
export interface LocalChangeResult {
  readonly record: StoredRecord;
  /** Whether the change was pushed now (touched a critical field) or waits for the next push batch. */
  readonly pushedNow: boolean;
}

/** Transient reasons keep a push pending (retried); the rest fail it for good. */
const permanentPushErrors = new Set(["InvalidRecord", "NotFound", "Conflict", "EntityNotSupported"]);

const iso = (ms: number) => new Date(ms).toISOString();

/** Reconciliation refreshes planner statistics before comparing a stage of this many ids or more. */
const analyzeStageFrom = 10_000;

/** Below this many records a statement's fixed cost outweighs what splitting a batch gains. */
const minRecordsPerStatement = 1_000;

/** A batch as up to `concurrency` equal parts of at least `minRecordsPerStatement` records. */
const splitForWriting = <A>(batch: ReadonlyArray<A>, concurrency: number): ReadonlyArray<ReadonlyArray<A>> => {
  const parts = Math.max(1, Math.min(Math.floor(concurrency), Math.floor(batch.length / minRecordsPerStatement)));
  if (parts === 1) return [batch];
  const size = Math.ceil(batch.length / parts);
  return Array.from({ length: parts }, (_, i) => batch.slice(i * size, (i + 1) * size));
};

const pageTimeout = (options: SyncRunOptions) => options.pageTimeoutMs ?? 300_000;

/** Item errors of one run, capped: a run over a million bad records must not hold a million errors. */
const itemErrors = (options: SyncRunOptions) => {
  const max = options.maxItemErrors ?? 1_000;
  const listed: Array<SyncItemError> = [];
  let omitted = 0;
  return {
    add: (e: SyncItemError) => {
      if (listed.length < max) listed.push(e);
      else omitted++;
    },
    list: (): ReadonlyArray<SyncItemError> =>
      omitted === 0
        ? listed
        : [...listed, { externalId: "*", type: "ErrorsOmitted", message: `${omitted} more item errors not listed` }],
  };
};

interface Resolved {
  readonly connector: AnyConnector;
  readonly entity: EntityDefinition<any, any>;
  readonly scope: RecordScope;
  readonly ctx: ConnectorContext<any>;
}

const itemError = (e: { readonly _tag: string; readonly message: string }, externalId?: string): SyncItemError => ({
  externalId: externalId ?? "unknown",
  type: e._tag,
  message: e.message,
});

const toIncoming = (r: DecodedRecord): IncomingRecord => ({
  externalId: r.externalId,
  data: r.data,
  remoteUpdatedAt: r.updatedAt,
});

/**
 * The sync engine: each strategy as a plain Effect over one connection entity.
 * No locking or queueing happens here; the job queue serializes runs per
 * connection x entity and calls these.
 */
export class EntitySync extends Context.Tag("@tandem/core/EntitySync")<
  EntitySync,
  {
    /** Runs one strategy. Full and delta resume from the checkpoint of an interrupted run of the same mode. */
    readonly run: (
      input: SyncTarget & { readonly mode: SyncMode; readonly options?: SyncRunOptions },
    ) => Effect.Effect<SyncRunResult, SyncRunError>;
    /**
     * Tests a connection: calls its connector's `check` (credentials, reachability) through the
     * engine's HTTP client. A refusal is an answer (`ok: false` with the reason), not a failure;
     * `checked: false` when the connector has no check.
     */
    readonly check: (target: {
      readonly tenantId: string;
      readonly connectionId: string;
    }) => Effect.Effect<ConnectionCheck, ResourceNotFound>;
    /** Webhook-triggered sync of one record: `get(id)`, then upsert or soft-delete. */
    readonly syncRecord: (target: SyncTarget, event: RecordEvent) => Effect.Effect<SyncRecordResult, SyncRunError>;
    /** Imports records given by the caller: batched, validated concurrently, committed at the end in one transaction. */
    readonly importRecords: (
      target: SyncTarget,
      records: Iterable<unknown> | AsyncIterable<unknown>,
      options?: ImportOptions,
    ) => Effect.Effect<ImportResult, SyncRunError>;
    /**
     * The connector entity's records, decoded, as a Stream: the source of a SyncJob
     * whose sink is the user's own tables (`fetchExternal: () => engine.source(target)`).
     * A record that fails to decode is logged and skipped; a broken page fails the stream.
     */
    readonly source: (target: SyncTarget, options?: { readonly since?: Date }) => Stream.Stream<unknown, SyncRunError>;
    /** The entity's stored records as NDJSON or CSV text chunks. */
    readonly export: (
      target: SyncTarget,
      format: ExportFormat,
      options?: { readonly columns?: ReadonlyArray<string>; readonly includeDeleted?: boolean },
    ) => Stream.Stream<string>;
    /**
     * A local change from the host application (hybrid): stored as pending, and
     * pushed at once through the connector's `write.update` when it touches one of
     * the entity's `criticalFields`; otherwise the next `push` run sends it.
     */
    readonly applyLocalChange: (
      target: SyncTarget,
      externalId: string,
      changes: Record<string, unknown>,
    ) => Effect.Effect<LocalChangeResult, SyncRunError>;
  }
>() {
  static readonly layer = Layer.effect(
    EntitySync,
    Effect.gen(function* () {
      const store = yield* RecordStore;
      const budget = yield* RateBudget;
      const connections = yield* Connections;
      const credentials = yield* ConnectorCredentials;
      const db = yield* Database;
      const conflicts = yield* Conflicts;

      /**
       * Upserts pulled records; those that meet unpushed local edits are settled three-way
       * (see PullSettlement) before the batch's checkpoint is saved, so a crash in between
       * re-reads them. Merged ones count as updated; ones left in conflict as unchanged.
       */
      const upsertPulled = (r: Resolved, batch: ReadonlyArray<IncomingRecord>, checkpoint?: CheckpointUpdate) =>
        Effect.gen(function* () {
          const result = yield* store.upsert(r.scope, batch, checkpoint === undefined ? {} : { checkpoint });
          if (result.heldBack.length === 0) return result;
          const policy = r.entity.conflictPolicy ?? { kind: "manual" };
          const settled = yield* settleHeldBack({ db, store, conflicts }, r.scope, policy, batch, result.heldBack);
          if (checkpoint !== undefined) yield* store.upsert(r.scope, [], { checkpoint });
          return {
            ...result,
            updated: [...result.updated, ...settled.updated],
            unchanged: result.unchanged + settled.conflicts + settled.unchanged,
          } satisfies UpsertResult;
        });

      /** Resolves the connection and builds a connector context, aborted when the scope closes. */
      const resolve = (target: SyncTarget) =>
        Effect.gen(function* () {
          const { connector, config } = yield* connections.resolve(target.tenantId, target.connectionId);
          const entity = connector.entities[target.entity];
          if (entity === undefined) {
            return yield* new EntityNotSupported({
              connector: connector.name,
              entity: target.entity,
              message: `connector "${connector.name}" has no entity "${target.entity}"`,
            });
          }
          const bucket = yield* budget.forConnection(target.connectionId, rateLimitPolicyOf(connector, config));
          const controller = yield* Effect.acquireRelease(
            Effect.sync(() => new AbortController()),
            (c) => Effect.sync(() => c.abort()),
          );
          const ctx = yield* credentials.contextFor(target.connectionId, connector, config, bucket, controller.signal);
          return { connector, entity, scope: target, ctx } satisfies Resolved;
        });

      const unsupported = (r: Resolved, message: string) =>
        new EntityNotSupported({ connector: r.connector.name, entity: r.scope.entity, message });

      const invalidPage = (r: Resolved, message: string) =>
        new InvalidPage({ connector: r.connector.name, entity: r.scope.entity, message });

      const asPage = (r: Resolved, page: unknown): Effect.Effect<ReadPage, InvalidPage> => {
        const p = page as Partial<ReadPage> | null;
        if (typeof p !== "object" || p === null || !Array.isArray(p.records)) {
          return Effect.fail(invalidPage(r, "read yielded a page that is not { records: [...], cursor? }"));
        }
        if (p.cursor !== undefined && p.cursor !== null && typeof p.cursor !== "string") {
          return Effect.fail(invalidPage(r, "page cursor must be a string or undefined"));
        }
        if (p.deleted !== undefined && p.deleted !== null && !Array.isArray(p.deleted)) {
          return Effect.fail(invalidPage(r, "page deleted must be an array of ids"));
        }
        return Effect.succeed({
          records: p.records,
          cursor: p.cursor ?? undefined,
          deleted: (p.deleted ?? []).filter((id) => typeof id === "string" || typeof id === "number").map(String),
        });
      };

      /** Full and delta: stream pages, upsert in batches, checkpoint with each batch. */
      const read = (r: Resolved, mode: "full" | "delta", options: SyncRunOptions) =>
        Effect.gen(function* () {
          const batchSize = Math.max(1, options.batchSize ?? 500);
          const maxPages = options.maxPages ?? 1_000_000;
          const startedMs = yield* Clock.currentTimeMillis;
          const stored = yield* store.cursor(r.scope);
          const resume = stored?.checkpoints[mode];
          const since =
            mode === "full"
              ? undefined
              : resume !== undefined
                ? resume.since
                : stored?.deltaCursor
                  ? iso(stored.deltaCursor.getTime() - (options.overlapMs ?? 300_000))
                  : undefined;
          let checkpoint: Checkpoint = resume ?? {
            mode,
            cursor: undefined,
            since,
            startedAt: iso(startedMs),
            maxUpdatedAt: undefined,
            pages: 0,
          };
          const counts = { created: 0, updated: 0, unchanged: 0 };
          const errors = itemErrors(options);
          const cursorsSeen = new Set<string>(checkpoint.cursor === undefined ? [] : [checkpoint.cursor]);
          let pagesThisRun = 0;
          // Whole pages wait here until a batch is full, so a checkpoint always names a page
          // boundary; memory stays around two batches (one being written) plus a few pages.
          // Only what is stored is kept (not the decoded record): less held per page in flight.
          let buffer = new Map<string, IncomingRecord>();
          let tombstones = new Set<string>();
          let deleted = 0;

          // One batch is written while the next is decoded: at most one write in flight, so
          // batches (and their checkpoints) still land in order.
          let writing: Fiber.RuntimeFiber<void> | undefined;
          const flush = (cp: Checkpoint | null) =>
            Effect.gen(function* () {
              if (writing !== undefined) yield* Fiber.join(writing);
              const batch = [...buffer.values()];
              const gone = [...tombstones];
              buffer = new Map();
              tombstones = new Set();
              writing = yield* Effect.forkScoped(
                Effect.gen(function* () {
                  // Deletions first, so the checkpoint (saved with the upsert) never passes a
                  // page whose deletions were not applied.
                  if (gone.length > 0) deleted += (yield* store.softDelete(r.scope, gone)).length;
                  const parts = splitForWriting(batch, options.writeConcurrency ?? 2);
                  const results = yield* Effect.forEach(
                    parts,
                    // One part: its statement saves the checkpoint too. Several: their ids are
                    // distinct (the buffer is keyed by id), so they cannot race each other, and
                    // the checkpoint waits for all of them (a crash in between re-reads the page).
                    (part) => upsertPulled(r, part, parts.length === 1 ? { mode, value: cp } : undefined),
                    { concurrency: "unbounded" },
                  );
                  if (parts.length > 1) yield* store.upsert(r.scope, [], { checkpoint: { mode, value: cp } });
                  for (const result of results) {
                    counts.created += result.created.length;
                    counts.updated += result.updated.length;
                    counts.unchanged += result.unchanged;
                  }
                  if (options.onProgress !== undefined) {
                    yield* options.onProgress({
                      phase: cp === null ? "done" : "reading",
                      pages: pagesThisRun,
                      ...counts,
                      deleted,
                      errors: errors.list().length,
                    });
                  }
                }),
              );
            });

          yield* sourceStream(() =>
            r.entity.read(r.ctx, {
              since: checkpoint.since === undefined ? undefined : new Date(checkpoint.since),
              cursor: checkpoint.cursor,
            }),
          ).pipe(
            Stream.timeoutFail(
              () =>
                new Unavailable({
                  message: `${r.connector.name}/${r.scope.entity}: no page within ${pageTimeout(options)} ms`,
                }),
              pageTimeout(options),
            ),
            // Read the next page while this one is written: HTTP and Postgres overlap, and
            // memory stays bounded (two pages ahead at most).
            Stream.buffer({ capacity: 2 }),
            Stream.runForEach((raw) =>
              Effect.gen(function* () {
                const page = yield* asPage(r, raw);
                const inPage = new Set<string>();
                let maxUpdatedAtMs =
                  checkpoint.maxUpdatedAt === undefined ? undefined : Date.parse(checkpoint.maxUpdatedAt);
                for (const item of page.records) {
                  const decoded = decodeRecord(r.entity, item);
                  if (Either.isLeft(decoded)) {
                    errors.add(itemError(decoded.left, decoded.left.externalId));
                    continue;
                  }
                  const rec = decoded.right;
                  if (inPage.has(rec.externalId)) {
                    errors.add({
                      externalId: rec.externalId,
                      type: "InvalidRecord",
                      message: "duplicate id within one page; the last occurrence was kept",
                    });
                  }
                  inPage.add(rec.externalId);
                  // Across pages a repeat is normal (offset paging over changing data): keep the newest.
                  const earlier = buffer.get(rec.externalId);
                  if (
                    earlier === undefined ||
                    earlier.remoteUpdatedAt === null ||
                    rec.updatedAt === null ||
                    rec.updatedAt >= earlier.remoteUpdatedAt
                  ) {
                    buffer.set(rec.externalId, toIncoming(rec));
                  }
                  const at = rec.updatedAt?.getTime();
                  if (at !== undefined && (maxUpdatedAtMs === undefined || at > maxUpdatedAtMs)) maxUpdatedAtMs = at;
                  tombstones.delete(rec.externalId);
                }
                for (const id of page.deleted ?? []) {
                  // A deletion listed after the record (in this batch) wins over it.
                  buffer.delete(id);
                  tombstones.add(id);
                }
                pagesThisRun++;
                checkpoint = {
                  ...checkpoint,
                  cursor: page.cursor,
                  pages: checkpoint.pages + 1,
                  maxUpdatedAt: maxUpdatedAtMs === undefined ? undefined : iso(maxUpdatedAtMs),
                };
                if (page.cursor !== undefined) {
                  if (cursorsSeen.has(page.cursor)) {
                    return yield* invalidPage(
                      r,
                      `cursor "${page.cursor.slice(0, 80)}" repeated after ${pagesThisRun} pages; the read would never end`,
                    );
                  }
                  cursorsSeen.add(page.cursor);
                }
                if (pagesThisRun > maxPages) {
                  return yield* invalidPage(r, `read exceeded ${maxPages} pages`);
                }
                if (buffer.size + tombstones.size >= batchSize) yield* flush(checkpoint);
              }),
            ),
            // When the read fails or is cancelled, the batch already handed to the database
            // still lands with its checkpoint: a retry resumes after it instead of re-reading it.
            Effect.ensuring(Effect.suspend(() => (writing === undefined ? Effect.void : Fiber.await(writing)))),
          );
          // The last batch and the cleared checkpoint go in one statement.
          yield* flush(null);
          if (writing !== undefined) yield* Fiber.join(writing);
          // Never "now at the end": a record changed while this run was in flight has an
          // updatedAt after what we saw (or after our start) and the next delta reads it.
          const candidate = checkpoint.maxUpdatedAt ?? checkpoint.startedAt;
          const previous = stored?.deltaCursor?.toISOString();
          const deltaCursor = previous !== undefined && previous > candidate ? previous : candidate;
          yield* store.saveCursor(r.scope, {
            deltaCursor: new Date(deltaCursor),
            ...(mode === "full" ? { lastFullAt: new Date(startedMs) } : { lastDeltaAt: new Date(startedMs) }),
          });
          return {
            ...counts,
            deleted,
            errors: errors.list(),
            pages: pagesThisRun,
            resumed: resume !== undefined,
            deltaCursor,
          };
        });

      /** Fetches records by id with `get`, decodes and upserts them in batches. */
      const fetchAndStore = (r: Resolved, ids: ReadonlyArray<string>, concurrency: number) =>
        Effect.gen(function* () {
          const get = r.entity.get;
          if (get === undefined) return yield* unsupported(r, "the entity has no get(id)");
          const errors: Array<SyncItemError> = [];
          const found: Array<DecodedRecord> = [];
          yield* Effect.forEach(
            ids,
            (id) =>
              callConnector(() => get(r.ctx, id)).pipe(
                Effect.flatMap((raw) =>
                  Effect.sync(() => {
                    if (raw === null || raw === undefined) return;
                    const decoded = decodeRecord(r.entity, raw);
                    if (Either.isLeft(decoded)) errors.push(itemError(decoded.left, id));
                    else found.push(decoded.right);
                  }),
                ),
                Effect.catchTags({
                  NotFound: () => Effect.void,
                  InvalidRecord: (e) => Effect.sync(() => errors.push(itemError(e, id))),
                }),
              ),
            { concurrency, discard: true },
          );
          const unique = [...new Map(found.map((f) => [f.externalId, f])).values()].map(toIncoming);
          const result = yield* upsertPulled(r, unique);
          return { result, errors };
        });

      const reconcile = (r: Resolved, options: SyncRunOptions) =>
        Effect.gen(function* () {
          const readIds = r.entity.readIds;
          if (readIds === undefined) return yield* unsupported(r, "the entity has no readIds; it cannot be reconciled");
          const runId = randomUUID();
          const startedMs = yield* Clock.currentTimeMillis;
          yield* store.clearStaleStages(new Date(startedMs - 86_400_000));
          return yield* Effect.gen(function* () {
            let pages = 0;
            let staged = 0;
            // Ids only, one page at a time, straight into Postgres: never whole objects in memory.
            // The next page is read while this one is staged.
            yield* sourceStream(() => readIds(r.ctx)).pipe(
              Stream.buffer({ capacity: 1 }),
              Stream.runForEach((page) =>
                Effect.gen(function* () {
                  if (!Array.isArray(page)) return yield* invalidPage(r, "readIds yielded a page that is not an array");
                  const ids = page
                    .filter((id) => (typeof id === "string" && id !== "") || typeof id === "number")
                    .map(String);
                  pages++;
                  staged += ids.length;
                  yield* store.stageIds(runId, ids);
                }),
              ),
            );
            if (staged >= analyzeStageFrom) yield* store.analyzeStage();
            const stored = yield* store.count(r.scope);
            const vanished = yield* store.vanished(r.scope, runId);
            const share = stored === 0 ? 0 : vanished.count / stored;
            let deleted = 0;
            let quarantine: Quarantine | undefined;
            if (vanished.count > 0 && share > (options.maxDeleteShare ?? 0.2) && options.allowMassDeletion !== true) {
              quarantine = {
                at: iso(startedMs),
                wouldDelete: vanished.count,
                stored,
                share,
                sample: vanished.sample,
              };
              yield* Effect.logWarning("reconciliation quarantined: it would delete too many records", quarantine);
            } else {
              deleted = yield* store.deleteVanished(r.scope, runId);
            }
            // Records the remote has and we lack (a missed delta, a lost webhook): fetched one by one.
            const counts = { created: 0, updated: 0, unchanged: 0 };
            const errors: Array<SyncItemError> = [];
            const pageSize = Math.max(1, options.batchSize ?? 500);
            let after: string | undefined;
            while (true) {
              const missing = yield* store.missingIds(r.scope, runId, { after, limit: pageSize });
              if (missing.length === 0) break;
              after = missing.at(-1);
              if (r.entity.get === undefined) {
                errors.push({
                  externalId: missing[0]!,
                  type: "EntityNotSupported",
                  message: "records are missing but the entity has no get(id) to fetch them",
                });
                break;
              }
              const fetched = yield* fetchAndStore(r, missing, options.concurrency ?? 4);
              counts.created += fetched.result.created.length;
              counts.updated += fetched.result.updated.length;
              counts.unchanged += fetched.result.unchanged;
              errors.push(...fetched.errors);
              if (missing.length < pageSize) break;
            }
            yield* store.saveCursor(r.scope, {
              lastReconcileAt: new Date(startedMs),
              quarantine: quarantine ?? null,
            });
            return {
              ...counts,
              deleted,
              errors,
              pages,
              resumed: false,
              ...(quarantine !== undefined ? { quarantine } : {}),
            };
          }).pipe(Effect.ensuring(store.clearStage(runId)));
        });

      /** Pushes one pending record through `write.update`. */
      const pushOne = (r: Resolved, record: StoredRecord) =>
        Effect.gen(function* () {
          const update = r.entity.write?.update;
          if (update === undefined) return yield* unsupported(r, "the entity has no write.update");
          const remote = yield* callConnector(() => update(r.ctx, record.externalId, record.pendingChanges ?? {}));
          const decoded = decodeRecord(r.entity, remote);
          if (Either.isLeft(decoded)) return yield* decoded.left;
          yield* store.markPushed(r.scope, record.externalId, record.version, toIncoming(decoded.right));
          return "synced" as const;
        }).pipe(
          Effect.catchAll((e) =>
            store
              .markPushFailed(r.scope, record.externalId, record.version, {
                permanent: permanentPushErrors.has(e._tag),
                message: `${e._tag}: ${e.message}`,
              })
              .pipe(Effect.as({ externalId: record.externalId, type: e._tag, message: e.message } as SyncItemError)),
          ),
        );

      const push = (r: Resolved, options: SyncRunOptions) =>
        Effect.gen(function* () {
          if (r.entity.write?.update === undefined) return yield* unsupported(r, "the entity has no write.update");
          const pending = yield* store.pending(r.scope, { limit: options.batchSize ?? 500 });
          const outcomes = yield* Effect.forEach(pending, (rec) => pushOne(r, rec), {
            concurrency: options.concurrency ?? 4,
          });
          const errors = outcomes.filter((o): o is SyncItemError => o !== "synced");
          return {
            created: 0,
            updated: outcomes.length - errors.length,
            unchanged: 0,
            deleted: 0,
            errors,
            pages: 1,
            resumed: false,
          };
        });

      const run = Effect.fn("EntitySync.run")(function* (
        input: SyncTarget & { readonly mode: SyncMode; readonly options?: SyncRunOptions },
      ) {
        const startedMs = yield* Clock.currentTimeMillis;
        const options = input.options ?? {};
        const outcome = yield* Effect.scoped(
          Effect.gen(function* () {
            const r = yield* resolve(input);
            switch (input.mode) {
              case "full":
              case "delta":
                return yield* read(r, input.mode, options);
              case "reconcile":
                return yield* reconcile(r, options);
              case "push":
                return yield* push(r, options);
            }
          }),
        );
        return {
          name: `${input.connectionId}/${input.entity}`,
          mode: input.mode,
          ...outcome,
          durationMs: (yield* Clock.currentTimeMillis) - startedMs,
        } satisfies SyncRunResult;
      });

      const syncRecord = Effect.fn("EntitySync.syncRecord")(function* (target: SyncTarget, event: RecordEvent) {
        return yield* Effect.scoped(
          Effect.gen(function* () {
            const r = yield* resolve(target);
            const id = event.externalId;
            const get = r.entity.get;
            if (get === undefined) {
              if (event.kind !== "deleted") return yield* unsupported(r, "the entity has no get(id)");
              const gone = yield* store.softDelete(
                r.scope,
                [id],
                event.occurredAt === undefined ? {} : { notNewerThan: event.occurredAt },
              );
              return { action: gone.length > 0 ? "deleted" : "unchanged", externalId: id } satisfies SyncRecordResult;
            }
            const raw = yield* callConnector(() => get(r.ctx, id)).pipe(
              Effect.catchTag("NotFound", () => Effect.succeed(null)),
            );
            if (raw === null || raw === undefined) {
              // `get` answers with the current state, so "gone now" wins over the event's age.
              const gone = yield* store.softDelete(r.scope, [id]);
              return { action: gone.length > 0 ? "deleted" : "unchanged", externalId: id } satisfies SyncRecordResult;
            }
            const decoded = decodeRecord(r.entity, raw);
            if (Either.isLeft(decoded)) {
              return {
                action: "failed",
                externalId: id,
                error: itemError(decoded.left, id),
              } satisfies SyncRecordResult;
            }
            // The upsert refuses data older than the stored remote_updated_at (a stale read or a late event).
            const result = yield* upsertPulled(r, [toIncoming(decoded.right)]);
            const action = result.created.length > 0 ? "created" : result.updated.length > 0 ? "updated" : "unchanged";
            return { action, externalId: decoded.right.externalId } satisfies SyncRecordResult;
          }),
        );
      });

      const importRecords = Effect.fn("EntitySync.importRecords")(function* (
        target: SyncTarget,
        records: Iterable<unknown> | AsyncIterable<unknown>,
        options: ImportOptions = {},
      ) {
        const startedMs = yield* Clock.currentTimeMillis;
        const batchSize = Math.max(1, options.batchSize ?? 500);
        const { connector } = yield* connections.resolve(target.tenantId, target.connectionId);
        const definition = connector.entities[target.entity];
        if (definition === undefined) {
          return yield* new EntityNotSupported({
            connector: connector.name,
            entity: target.entity,
            message: `connector "${connector.name}" has no entity "${target.entity}"`,
          });
        }
        const source =
          Symbol.asyncIterator in (records as object)
            ? Stream.fromAsyncIterable(records as AsyncIterable<unknown>, (e) => e).pipe(Stream.orDie)
            : Stream.fromIterable(records as Iterable<unknown>);
        // Validate batches in parallel; nothing is written until every batch is checked.
        const validated = yield* source.pipe(
          Stream.grouped(batchSize),
          Stream.mapEffect(
            (batch) =>
              Effect.sync(() => {
                const ok: Array<DecodedRecord> = [];
                const errors: Array<SyncItemError> = [];
                for (const raw of Chunk.toReadonlyArray(batch)) {
                  const decoded = decodeRecord(definition, raw);
                  if (Either.isLeft(decoded)) errors.push(itemError(decoded.left, decoded.left.externalId));
                  else ok.push(decoded.right);
                }
                return { ok, errors };
              }),
            { concurrency: options.concurrency ?? 4 },
          ),
          Stream.runCollect,
        );
        const batches = Chunk.toReadonlyArray(validated);
        const errors = batches.flatMap((b) => b.errors);
        const seen = new Set<string>();
        const valid: Array<DecodedRecord> = [];
        for (const rec of batches.flatMap((b) => b.ok)) {
          if (seen.has(rec.externalId)) {
            errors.push({ externalId: rec.externalId, type: "InvalidRecord", message: "duplicate id in the import" });
            continue;
          }
          seen.add(rec.externalId);
          valid.push(rec);
        }
        const commit = errors.length === 0 || options.onInvalid === "skip-invalid";
        const counts = { created: 0, updated: 0, unchanged: 0 };
        if (commit) {
          yield* db.transaction(
            Effect.forEach(
              Chunk.toReadonlyArray(Chunk.chunksOf(Chunk.fromIterable(valid), batchSize)),
              (batch) =>
                Effect.map(store.upsert(target, Chunk.toReadonlyArray(batch).map(toIncoming)), (res) => {
                  counts.created += res.created.length;
                  counts.updated += res.updated.length;
                  counts.unchanged += res.unchanged;
                }),
              { discard: true },
            ),
          );
        }
        return {
          name: `${target.connectionId}/${target.entity}`,
          ...counts,
          deleted: 0,
          errors,
          committed: commit,
          batches: batches.length,
          durationMs: (yield* Clock.currentTimeMillis) - startedMs,
        } satisfies ImportResult;
      });

      const applyLocalChange = Effect.fn("EntitySync.applyLocalChange")(function* (
        target: SyncTarget,
        externalId: string,
        changes: Record<string, unknown>,
      ) {
        return yield* Effect.scoped(
          Effect.gen(function* () {
            const r = yield* resolve(target);
            const stored = yield* store.applyLocalChange(r.scope, externalId, changes);
            if (Option.isNone(stored)) {
              return yield* new ResourceNotFound({ resource: "record", id: externalId });
            }
            const critical = r.entity.criticalFields ?? [];
            if (!Object.keys(changes).some((k) => critical.includes(k))) {
              return { record: stored.value, pushedNow: false } satisfies LocalChangeResult;
            }
            yield* pushOne(r, stored.value);
            const after = yield* store.get(r.scope, externalId);
            return { record: Option.getOrElse(after, () => stored.value), pushedNow: true } satisfies LocalChangeResult;
          }),
        );
      });

      const source = (
        target: SyncTarget,
        options: { readonly since?: Date } = {},
      ): Stream.Stream<unknown, SyncRunError> =>
        Stream.unwrapScoped(
          Effect.map(resolve(target), (r) => {
            const cursors = new Set<string>();
            return sourceStream(() => r.entity.read(r.ctx, { since: options.since, cursor: undefined })).pipe(
              Stream.mapEffect((raw) =>
                Effect.flatMap(asPage(r, raw), (page): Effect.Effect<ReadonlyArray<unknown>, InvalidPage> => {
                  if (page.cursor !== undefined) {
                    if (cursors.has(page.cursor))
                      return Effect.fail(invalidPage(r, `cursor "${page.cursor}" repeated`));
                    cursors.add(page.cursor);
                  }
                  return Effect.succeed(page.records);
                }),
              ),
              Stream.flattenIterables,
              Stream.mapEffect((raw): Effect.Effect<Option.Option<unknown>> => {
                const decoded = decodeRecord(r.entity, raw);
                return Either.isRight(decoded)
                  ? Effect.succeed(Option.some(decoded.right.record))
                  : Effect.as(
                      Effect.logWarning("skipping a record that does not decode", {
                        externalId: decoded.left.externalId,
                        error: decoded.left.message,
                      }),
                      Option.none(),
                    );
              }),
              Stream.filterMap((o) => o),
            );
          }),
        );

      const check = Effect.fn("EntitySync.check")(function* (target: {
        readonly tenantId: string;
        readonly connectionId: string;
      }) {
        const { connector, config } = yield* connections.resolve(target.tenantId, target.connectionId);
        const connectorCheck = connector.check;
        if (connectorCheck === undefined) return { ok: true, checked: false } satisfies ConnectionCheck;
        const bucket = yield* budget.forConnection(target.connectionId, rateLimitPolicyOf(connector, config));
        return yield* Effect.scoped(
          Effect.gen(function* () {
            const controller = yield* Effect.acquireRelease(
              Effect.sync(() => new AbortController()),
              (c) => Effect.sync(() => c.abort()),
            );
            const ctx = yield* credentials.contextFor(
              target.connectionId,
              connector,
              config,
              bucket,
              controller.signal,
            );
            return yield* callConnector(() => connectorCheck(ctx)).pipe(
              Effect.as({ ok: true, checked: true } satisfies ConnectionCheck),
              Effect.catchAll((e) =>
                Effect.succeed({
                  ok: false,
                  checked: true,
                  error: { type: e._tag, message: e.message },
                } satisfies ConnectionCheck),
              ),
            );
          }),
        );
      });

      return {
        run,
        check,
        source,
        syncRecord,
        importRecords,
        export: (target, format, options) => store.export(target, format, options),
        applyLocalChange,
      };
    }),
  );
}
