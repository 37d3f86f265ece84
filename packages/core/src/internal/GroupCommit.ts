import { Chunk, Deferred, Effect, Exit, Queue, type Scope } from "effect";

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
   * own. A failure or defect of the whole call fails every item of the batch with its cause.
   */
  readonly write: (items: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<Exit.Exit<O, E>>, E>;
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

    // Uninterruptible: a write is never cut off half-answered.
    const flush = (batch: ReadonlyArray<Pending<I, O, E>>) =>
      Effect.suspend(() => options.write(batch.map((p) => p.item))).pipe(
        Effect.exit,
        Effect.flatMap((exit) => answer(batch, exit)),
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
