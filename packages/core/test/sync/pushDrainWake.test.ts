import { expect, layer } from "@effect/vitest";
import { Database, JobQueue, RetryPolicy, RetryPolicyConfig } from "@tandem/core";
import { testDatabaseLayer } from "@tandem/testkit";
import { Effect, Layer, TestServices } from "effect";
import { ensureDrain, PUSH_DRAIN_JOB_KIND } from "../../src/sync/push/pushDrainJob.ts";

/*
 * A local change whose transaction holds the queued drain (ensureDrain's share lock) while that
 * drain comes due: a worker trying to claim it then skips the locked row. The drain must run as
 * soon as the transaction commits, not at the workers' next poll.
 */

const realSleep = (ms: number) => Effect.promise(() => new Promise((r) => setTimeout(r, ms)));

const queueLayer = JobQueue.layerNoDeps.pipe(
  Layer.provideMerge(RetryPolicy.layer),
  Layer.provideMerge(Layer.succeed(RetryPolicyConfig, { baseDelayMs: 10, maxDelayMs: 50, defaultMaxAttempts: 3 })),
  Layer.provideMerge(testDatabaseLayer("postgres")),
);

const makeConnection = Effect.gen(function* () {
  const db = yield* Database;
  const tenantId = crypto.randomUUID();
  const connectionId = crypto.randomUUID();
  yield* db.query((k) => k.insertInto("tenants").values({ id: tenantId, name: "t" }).execute());
  yield* db.query((k) =>
    k
      .insertInto("connections")
      .values({ id: connectionId, tenant_id: tenantId, connector: "x", name: connectionId, config_ciphertext: "-" })
      .execute(),
  );
  return { tenantId, connectionId };
}).pipe(Effect.orDie);

layer(queueLayer, { timeout: 60_000 })("push drain wake-ups", (it) => {
  it.effect(
    "a held drain that came due meanwhile runs once the holding transaction commits, not at the next poll",
    () =>
      TestServices.provideLive(
        Effect.scoped(
          Effect.gen(function* () {
            const db = yield* Database;
            const queue = yield* JobQueue;
            const policy = yield* RetryPolicy;
            const { tenantId, connectionId } = yield* makeConnection;
            const target = { tenantId, connectionId, entity: "contacts" };
            const ran: Array<number> = [];
            // Polls far apart: only a wake-up can start the drain in time.
            yield* queue.worker({
              pollMs: 30_000,
              handlers: { [PUSH_DRAIN_JOB_KIND]: () => Effect.sync(() => void ran.push(performance.now())) },
            });
            // A drain due in 200 ms (the worker is woken then: the row is held, so it skips it).
            yield* db.transaction(ensureDrain({ queue, policy }, target, "x", new Date(Date.now() + 200), false));
            // A change in a transaction that holds that drain past its due time.
            yield* db.transaction(
              Effect.zipRight(
                ensureDrain({ queue, policy }, target, "x", new Date(Date.now() + 1_000), false),
                realSleep(600),
              ),
            );
            const committedAt = performance.now();
            const deadline = committedAt + 5_000;
            while (ran.length === 0 && performance.now() < deadline) yield* realSleep(20);
            expect(ran).toHaveLength(1);
            expect(ran[0]! - committedAt).toBeLessThan(2_000);
            const drains = yield* queue.list({ kind: PUSH_DRAIN_JOB_KIND, connectionId });
            expect(drains).toHaveLength(1);
          }),
        ),
      ),
  );
});
