import { randomUUID } from "node:crypto";
import { type Context, Effect } from "effect";
import type { DatabaseService } from "../../db/Database.ts";
import { AlreadyRunning, type FieldIssue, InvalidInput } from "../../errors/Errors.ts";
import { currentDate } from "../currentDate.ts";
import type { EnqueueInput } from "../JobQueue.ts";
import * as store from "../JobStore.ts";
import type { RetryPolicy } from "../RetryPolicy.ts";
import { priorityValue } from "./priority.ts";
import type { QueueDeps } from "./QueueDeps.ts";

/** Checks what the database would otherwise reject with a less helpful message. */
export const validate = (input: EnqueueInput, path = ""): ReadonlyArray<FieldIssue> => {
  const issues: FieldIssue[] = [];
  if (typeof input.kind !== "string" || input.kind.trim() === "") {
    issues.push({ path: `${path}kind`, message: "a job needs a kind (the handler that runs it)" });
  }
  const priority = priorityValue(input.priority);
  if (!Number.isInteger(priority) || priority < 0 || priority > 3) {
    issues.push({ path: `${path}priority`, message: "priority is webhook, onDemand, delta, backfill or 0..3" });
  }
  if (input.maxAttempts !== undefined && (!Number.isInteger(input.maxAttempts) || input.maxAttempts < 1)) {
    issues.push({ path: `${path}maxAttempts`, message: "maxAttempts must be a whole number, at least 1" });
  }
  if (input.runAt !== undefined && Number.isNaN(input.runAt.getTime?.())) {
    issues.push({ path: `${path}runAt`, message: "runAt must be a valid date" });
  }
  return issues;
};

/** The row of a new job, with the queue's defaults. */
const newJob = (policy: Context.Tag.Service<RetryPolicy>, input: EnqueueInput, at: Date): store.NewJob => ({
  id: randomUUID(),
  kind: input.kind,
  payload: input.payload,
  priority: priorityValue(input.priority),
  tenant_id: input.tenantId ?? null,
  connection_id: input.connectionId ?? null,
  run_at: input.runAt ?? at,
  max_attempts: input.maxAttempts ?? policy.maxAttemptsFor(undefined),
  created_at: at,
});

/** Validates jobs and builds their rows, as `enqueueMany` inserts them. */
export const prepare = (
  policy: Context.Tag.Service<RetryPolicy>,
  inputs: ReadonlyArray<Omit<EnqueueInput, "dedupeKey">>,
): Effect.Effect<ReadonlyArray<store.NewJob>, InvalidInput> =>
  Effect.gen(function* () {
    const issues = inputs.flatMap((input, i) => validate(input, `${i}.`));
    if (issues.length > 0) return yield* new InvalidInput({ issues });
    const at = yield* currentDate;
    return inputs.map((input) => newJob(policy, input, at));
  });

/** Adds a job; fails with AlreadyRunning when a live job holds its dedupe key. */
export const enqueue = Effect.fn("JobQueue.enqueue")(function* (deps: QueueDeps, input: EnqueueInput) {
  const issues = validate(input);
  if (issues.length > 0) return yield* new InvalidInput({ issues });
  // A live job with the key may finish between our insert and our lookup: try again then.
  for (let i = 0; i < 3; i++) {
    const job = newJob(deps.policy, input, yield* currentDate);
    const inserted = yield* deps.db
      .query((k) => store.insertUnlessKeyHeld(k, { ...job, dedupe_key: input.dedupeKey ?? null }))
      .pipe(Effect.orDie);
    if (inserted !== undefined) {
      yield* deps.wake;
      if (job.run_at > job.created_at) yield* deps.wakeAt(job.run_at);
      return { id: job.id };
    }
    const live = yield* deps.db.query((k) => store.findLive(k, input.dedupeKey!)).pipe(Effect.orDie);
    if (live !== undefined) return yield* new AlreadyRunning({ jobId: live.id, key: input.dedupeKey! });
  }
  return yield* Effect.die(new Error(`dedupe key ${input.dedupeKey} kept changing hands`));
});

/**
 * After a bulk enqueue that at least doubled the queue, statistics are stale until autovacuum
 * (up to a minute): the planner then believes the queue holds a few dozen rows and claims by
 * sorting every queued job instead of reading the claim index in order (EXPLAIN ANALYZE with
 * 50,000 queued: 450 ms per claim against 0.8 ms). One ANALYZE per doubling is a handful for
 * any backlog, and a no-op for everyday enqueues.
 */
const refreshStatisticsAfterBulkInsert = (db: DatabaseService, inserted: number) =>
  Effect.gen(function* () {
    if (inserted < 1_000) return;
    // The estimate predates this insert (that is the point), so it is the queue before it.
    const before = yield* db.query(store.estimatedRows);
    if (inserted >= before) yield* db.query(store.analyze);
  }).pipe(Effect.orDie);

/** Adds many jobs, a statement per 5,000. */
export const enqueueMany = Effect.fn("JobQueue.enqueueMany")(function* (
  deps: QueueDeps,
  inputs: ReadonlyArray<Omit<EnqueueInput, "dedupeKey">>,
) {
  if (inputs.length === 0) return [];
  const rows = yield* prepare(deps.policy, inputs);
  // Chunked to bound the size of one statement's parameter.
  for (let i = 0; i < rows.length; i += 5_000) {
    const chunk = rows.slice(i, i + 5_000);
    yield* deps.db.query((k) => store.insertMany(k, chunk)).pipe(Effect.orDie);
  }
  yield* refreshStatisticsAfterBulkInsert(deps.db, rows.length);
  yield* deps.wake;
  return rows.map((r) => r.id);
});
