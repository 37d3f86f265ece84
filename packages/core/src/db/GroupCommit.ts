import { Cause, Chunk, Deferred, Effect, Exit, Queue, type Scope } from "effect";

/**
 * Group commit: callers submit one item each and wait for its answer; one writer fiber takes
 * everything submitted meanwhile (up to `maxBatch`) and writes it with one `write` call. Under
 * load a batch forms by itself, while the previous write is in flight; a lone item is written at
 * once, with no added wait. One round trip then serves many callers: the webhook route's
 * deliveries, the queue's settlements.
 */
export interface GroupCommit<I, O, E> {
  /** Submits one item and waits until the batch holding it is written; answers its own result. */
  readonly submit: (item: I) => Effect.Effect<O, E>;
}

export interface GroupCommitOptions<I, O, E> {
  /** Items per `write`, at most. */
  readonly maxBatch: number;
  /**
   * Writes in flight at once (default 1). More than one keeps the database busy while a
   * commit waits on its round trips; only for writes whose order does not matter.
   */
  readonly concurrency?: number;
  /**
   * Writes a batch and answers one Exit per item, in order: items can succeed or fail on their
   * own. When the whole call fails (a failure or a defect), its items are written again one per
   * call (see `retryApart`), so one item that fails the statement fails alone.
   */
  readonly write: (items: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<Exit.Exit<O, E>>, E>;
  /**
   * Whether a batch whose write failed as a whole is written again one item per call (default:
   * always). Answer false for a failure every item would meet alone too, such as the database
   * being unreachable: writing them one by one would only multiply the wait. Each item then
   * fails with the batch's cause.
   */
  readonly retryApart?: (cause: Cause.Cause<E>) => boolean;
}

interface Pending<I, O, E> {
  readonly item: I;
  readonly done: Deferred.Deferred<O, E>;
}

const answer = <I, O, E>(batch: ReadonlyArray<Pending<I, O, E>>, exit: Exit.Exit<ReadonlyArray<Exit.Exit<O, E>>, E>) =>
  Effect.forEach(
    batch,
    (p, i) => {
      if (Exit.isFailure(exit)) return Deferred.failCause(p.done, exit.cause);
      const own = exit.value[i];
      return own === undefined
        ? Deferred.die(p.done, new Error(`group commit: the write answered ${exit.value.length} of ${batch.length}`))
        : Deferred.done(p.done, own);
    },
    { discard: true },
  );

/**
 * Starts the writer in the current scope. When the scope closes, the batch being written
 * finishes, everything still waiting is written too, and later submissions are refused
 * (their fiber is interrupted): nothing submitted is left unanswered.
 */
export const make = <I, O, E>(
  options: GroupCommitOptions<I, O, E>,
): Effect.Effect<GroupCommit<I, O, E>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const pending = yield* Queue.unbounded<Pending<I, O, E>>();
    const maxBatch = Math.max(1, options.maxBatch);
    const concurrency = Math.max(1, options.concurrency ?? 1);
    // A writer slot is taken before a batch is: items wait in the queue, not in a batch that
    // waits for a slot, so each batch holds everything that arrived until it could be written.
    const slots = yield* Effect.makeSemaphore(concurrency);

    const retryApart = options.retryApart ?? (() => true);
    const write = (batch: ReadonlyArray<Pending<I, O, E>>) =>
      Effect.exit(Effect.suspend(() => options.write(batch.map((p) => p.item))));

    // Uninterruptible: a write is never cut off half-answered. A batch that failed as a whole is
    // written again one item at a time: one item PostgreSQL refuses (a value out of range) would
    // otherwise fail every caller that shared its statement, another tenant's deliveries included.
    const flush = (batch: ReadonlyArray<Pending<I, O, E>>) =>
      write(batch).pipe(
        Effect.flatMap((exit) =>
          Exit.isFailure(exit) && batch.length > 1 && !Cause.isInterruptedOnly(exit.cause) && retryApart(exit.cause)
            ? Effect.forEach(batch, (p) => Effect.flatMap(write([p]), (own) => answer([p], own)), { discard: true })
            : answer(batch, exit),
        ),
        Effect.uninterruptible,
      );

    // Added before the writer is forked, so it runs after the writer is interrupted: it waits for
    // the writes in flight, then writes the rest.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        yield* slots.withPermits(concurrency)(Effect.void);
        while (true) {
          const rest = Chunk.toReadonlyArray(yield* Queue.takeUpTo(pending, maxBatch));
          if (rest.length === 0) break;
          yield* flush(rest);
        }
        yield* Queue.shutdown(pending);
      }),
    );
    yield* Effect.forkScoped(
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          yield* restore(slots.take(1));
          const batch = yield* restore(Queue.takeBetween(pending, 1, maxBatch)).pipe(
            Effect.onInterrupt(() => slots.release(1)),
          );
          // A daemon: the flush outlives the writer's interruption; the finalizer waits for its slot.
          yield* Effect.forkDaemon(flush(Chunk.toReadonlyArray(batch)).pipe(Effect.ensuring(slots.release(1))));
        }),
      ).pipe(Effect.forever),
    );

    return {
      submit: (item: I) =>
        Effect.flatMap(Deferred.make<O, E>(), (done) =>
          Effect.zipRight(Queue.offer(pending, { item, done }), Deferred.await(done)),
        ),
    };
  });
