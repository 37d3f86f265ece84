import { Effect, Exit, Fiber, Queue, type Scope } from "effect";

/** Below this many records a statement's fixed cost outweighs what splitting a batch gains. */
const minRecordsPerStatement = 1_000;

/** A batch as up to `concurrency` equal parts of at least `minRecordsPerStatement` records. */
export const splitForWriting = <A>(batch: ReadonlyArray<A>, concurrency: number): ReadonlyArray<ReadonlyArray<A>> => {
  const parts = Math.max(1, Math.min(Math.floor(concurrency), Math.floor(batch.length / minRecordsPerStatement)));
  if (parts === 1) return [batch];
  const size = Math.ceil(batch.length / parts);
  return Array.from({ length: parts }, (_, i) => batch.slice(i * size, (i + 1) * size));
};

/**
 * The writer behind a read. One batch is written while the reader fills the next; the reader
 * hands a batch over only once the previous one is written, so at most one write is in flight
 * and batches (and their checkpoints) land in order. Batches travel through a queue, and each
 * write answers with the totals so far: the reader and the writer share no state.
 */
export interface BatchWriter<B, T, E> {
  /** Waits until the previous batch is written (failing with its error), then hands this one over. */
  readonly write: (batch: B) => Effect.Effect<void, E>;
  /** Hands the last batch over and answers the totals of every batch once it is written. */
  readonly finish: (last: B) => Effect.Effect<T, E>;
  /** Lets a batch already handed over land, then stops the writer (for a read that fails or is cancelled). */
  readonly settle: Effect.Effect<void>;
}

const stop = Symbol("stop");

/**
 * Starts a writer fiber in the scope: `writeBatch` takes a batch and the totals before it and
 * answers the totals after it. Writes stop at the first failure.
 */
export const startBatchWriter = <B, T, E, R>(
  initial: T,
  writeBatch: (batch: B, totals: T) => Effect.Effect<T, E, R>,
): Effect.Effect<BatchWriter<B, T, E>, never, Scope.Scope | R> =>
  Effect.gen(function* () {
    const batches = yield* Queue.unbounded<B | typeof stop>();
    // The outcome of the batch written last; the first batch finds one waiting.
    const written = yield* Queue.unbounded<Exit.Exit<T, E>>();
    yield* Queue.offer(written, Exit.succeed(initial));
    const loop = (totals: T): Effect.Effect<void, never, R> =>
      Effect.flatMap(Queue.take(batches), (batch) =>
        batch === stop
          ? Effect.void
          : Effect.flatMap(Effect.exit(writeBatch(batch, totals)), (exit) =>
              Effect.zipRight(Queue.offer(written, exit), Exit.isSuccess(exit) ? loop(exit.value) : Effect.void),
            ),
      );
    const writer = yield* Effect.forkScoped(loop(initial));
    /** Waits for the batch written last; its failure is the reader's. */
    const previousWritten = Effect.flatMap(Queue.take(written), (previous) =>
      Exit.isSuccess(previous) ? Effect.void : Effect.failCause(previous.cause),
    );
    return {
      write: (batch) => Effect.asVoid(Effect.zipRight(previousWritten, Queue.offer(batches, batch))),
      finish: (last) =>
        previousWritten.pipe(
          Effect.zipRight(Queue.offer(batches, last)),
          Effect.zipRight(Effect.flatten(Queue.take(written))),
        ),
      settle: Effect.zipRight(Queue.offer(batches, stop), Fiber.await(writer)),
    } satisfies BatchWriter<B, T, E>;
  });
