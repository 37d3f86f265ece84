import { describe, expect, it } from "@effect/vitest";
import { Deferred, Effect, Exit, Fiber, Scope } from "effect";
import * as GroupCommit from "../../src/db/GroupCommit.ts";

/** A writer that records its batches, can be held at its first call, and fails negative items. */
const recordingWriter = Effect.gen(function* () {
  const batches: Array<ReadonlyArray<number>> = [];
  const firstStarted = yield* Deferred.make<void>();
  const releaseFirst = yield* Deferred.make<void>();
  const write = (items: ReadonlyArray<number>) =>
    Effect.gen(function* () {
      batches.push(items);
      if (batches.length === 1) {
        yield* Deferred.succeed(firstStarted, undefined);
        yield* Deferred.await(releaseFirst);
      }
      return items.map((n) => (n < 0 ? Exit.fail(`rejected ${n}`) : Exit.succeed(n * 10)));
    });
  return { batches, firstStarted, releaseFirst, write };
});

/** A writer whose whole call fails when its batch holds a 0 (as one refused value fails a statement). */
const poisonableWriter = Effect.gen(function* () {
  const w = yield* recordingWriter;
  const write = (items: ReadonlyArray<number>) =>
    Effect.flatMap(w.write(items), (answers) =>
      items.includes(0) ? Effect.fail("poisoned by 0") : Effect.succeed(answers),
    );
  return { ...w, write };
});

/** Forks `n` submissions and waits until every one is queued behind the held first write. */
const submitAll = (commit: GroupCommit.GroupCommit<number, number, string>, items: ReadonlyArray<number>) =>
  Effect.forEach(items, (n) => Effect.fork(Effect.either(commit.submit(n))));

describe("GroupCommit", () => {
  it.scoped("items submitted while a write is in flight go out together in the next one", () =>
    Effect.gen(function* () {
      const w = yield* recordingWriter;
      const commit = yield* GroupCommit.make({ maxBatch: 100, write: w.write });
      const first = yield* Effect.fork(commit.submit(1));
      yield* Deferred.await(w.firstStarted);
      const rest = yield* submitAll(commit, [2, 3, 4, 5, 6]);
      yield* Effect.yieldNow();
      yield* Deferred.succeed(w.releaseFirst, undefined);
      expect(yield* Fiber.join(first)).toBe(10);
      const answers = yield* Effect.forEach(rest, Fiber.join);
      expect(answers.map((a) => (a._tag === "Right" ? a.right : a.left))).toEqual([20, 30, 40, 50, 60]);
      expect(w.batches).toEqual([[1], [2, 3, 4, 5, 6]]);
    }),
  );

  it.scoped("each item gets its own answer: one rejected item fails alone", () =>
    Effect.gen(function* () {
      const w = yield* recordingWriter;
      const commit = yield* GroupCommit.make({ maxBatch: 100, write: w.write });
      yield* Deferred.succeed(w.releaseFirst, undefined);
      const fibers = yield* submitAll(commit, [7, -8, 9]);
      const answers = yield* Effect.forEach(fibers, Fiber.join);
      expect(answers.map((a) => (a._tag === "Right" ? a.right : a.left))).toEqual([70, "rejected -8", 90]);
    }),
  );

  it.scoped("a write that fails as a whole fails every item of its batch, and the next batch is written", () =>
    Effect.gen(function* () {
      let calls = 0;
      const commit = yield* GroupCommit.make<number, number, string>({
        maxBatch: 100,
        write: (items) => {
          calls++;
          return calls === 1 ? Effect.fail("database down") : Effect.succeed(items.map((n) => Exit.succeed(n)));
        },
      });
      expect(yield* Effect.flip(commit.submit(1))).toBe("database down");
      expect(yield* commit.submit(2)).toBe(2);
    }),
  );

  it.scoped("batches never exceed maxBatch", () =>
    Effect.gen(function* () {
      const w = yield* recordingWriter;
      const commit = yield* GroupCommit.make({ maxBatch: 4, write: w.write });
      const first = yield* Effect.fork(commit.submit(0));
      yield* Deferred.await(w.firstStarted);
      const rest = yield* submitAll(
        commit,
        Array.from({ length: 10 }, (_, i) => i + 1),
      );
      yield* Effect.yieldNow();
      yield* Deferred.succeed(w.releaseFirst, undefined);
      yield* Fiber.join(first);
      yield* Effect.forEach(rest, Fiber.join);
      expect(w.batches.map((b) => b.length)).toEqual([1, 4, 4, 2]);
      expect(w.batches.flat()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    }),
  );

  it.effect("with concurrency 2 a second batch is written while the first is in flight; closing waits for both", () =>
    Effect.gen(function* () {
      const started: Array<ReadonlyArray<number>> = [];
      const gate = yield* Deferred.make<void>();
      const bothStarted = yield* Deferred.make<void>();
      const scope = yield* Scope.make();
      const commit = yield* GroupCommit.make<number, number, string>({
        maxBatch: 100,
        concurrency: 2,
        write: (items) =>
          Effect.gen(function* () {
            started.push(items);
            if (started.length === 2) yield* Deferred.succeed(bothStarted, undefined);
            yield* Deferred.await(gate);
            return items.map((n) => Exit.succeed(n));
          }),
      }).pipe(Scope.extend(scope));
      const first = yield* Effect.fork(commit.submit(1));
      yield* Effect.yieldNow();
      const second = yield* Effect.fork(commit.submit(2));
      yield* Deferred.await(bothStarted);
      expect(started).toEqual([[1], [2]]);
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void));
      yield* Effect.yieldNow();
      expect(closing.unsafePoll()).toBeNull();
      yield* Deferred.succeed(gate, undefined);
      yield* Fiber.join(closing);
      expect([yield* Fiber.join(first), yield* Fiber.join(second)]).toEqual([1, 2]);
    }),
  );

  it.effect("closing the scope writes what is still waiting, then refuses new items", () =>
    Effect.gen(function* () {
      const w = yield* recordingWriter;
      const scope = yield* Scope.make();
      const commit = yield* GroupCommit.make({ maxBatch: 100, write: w.write }).pipe(Scope.extend(scope));
      const first = yield* Effect.fork(commit.submit(1));
      yield* Deferred.await(w.firstStarted);
      const waiting = yield* submitAll(commit, [2, 3]);
      yield* Effect.yieldNow();
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void));
      yield* Effect.yieldNow();
      yield* Deferred.succeed(w.releaseFirst, undefined);
      yield* Fiber.join(closing);
      expect(yield* Fiber.join(first)).toBe(10);
      const answers = yield* Effect.forEach(waiting, Fiber.join);
      expect(answers.map((a) => (a._tag === "Right" ? a.right : a.left))).toEqual([20, 30]);
      expect(w.batches).toEqual([[1], [2, 3]]);
      const late = yield* Effect.exit(commit.submit(4));
      expect(Exit.isInterrupted(late)).toBe(true);
    }),
  );

  it.scoped("a batch one item poisons is written again one item per call: only the poison fails", () =>
    Effect.gen(function* () {
      const w = yield* poisonableWriter;
      const commit = yield* GroupCommit.make({ maxBatch: 100, write: w.write });
      const first = yield* Effect.fork(commit.submit(1));
      yield* Deferred.await(w.firstStarted);
      // Queued behind the held first write, so they share the next one, poison included.
      const rest = yield* submitAll(commit, [2, 0, 3, 4]);
      yield* Effect.yieldNow();
      yield* Deferred.succeed(w.releaseFirst, undefined);
      expect(yield* Fiber.join(first)).toBe(10);
      const answers = yield* Effect.forEach(rest, Fiber.join);
      expect(answers.map((a) => (a._tag === "Right" ? a.right : a.left))).toEqual([20, "poisoned by 0", 30, 40]);
      expect(w.batches).toEqual([[1], [2, 0, 3, 4], [2], [0], [3], [4]]);
    }),
  );

  it.scoped("a failure retryApart declines (the database down) fails the batch at once, without retries", () =>
    Effect.gen(function* () {
      const w = yield* poisonableWriter;
      const commit = yield* GroupCommit.make({ maxBatch: 100, write: w.write, retryApart: () => false });
      const first = yield* Effect.fork(commit.submit(1));
      yield* Deferred.await(w.firstStarted);
      const rest = yield* submitAll(commit, [2, 0, 3]);
      yield* Effect.yieldNow();
      yield* Deferred.succeed(w.releaseFirst, undefined);
      yield* Fiber.join(first);
      const answers = yield* Effect.forEach(rest, Fiber.join);
      expect(answers.map((a) => (a._tag === "Right" ? a.right : a.left))).toEqual([
        "poisoned by 0",
        "poisoned by 0",
        "poisoned by 0",
      ]);
      expect(w.batches).toEqual([[1], [2, 0, 3]]);
    }),
  );
});
