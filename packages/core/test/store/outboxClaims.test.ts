import { expect, layer } from "@effect/vitest";
import { PushOutbox } from "@tandem/core";
import { acmeConnector, createTestConnection, dialects, testEngineLayer } from "@tandem/testkit";
import { Clock, Effect, TestClock } from "effect";

/*
 * Who may claim an outbox entry. A drain has up to `batchesInFlight` claimed batches in flight:
 * its next claim must not take an entry of a batch still being written (it would be written
 * twice). A later attempt of the same drain job (the earlier one died, its claims not yet
 * lapsed) takes back what the earlier attempt left claimed. Other drains wait for the lease.
 */

const scopeOf = Effect.map(
  createTestConnection("acme-crm", { baseUrl: "https://acme.test/api", token: "t" }),
  (ids) => ({ ...ids, entity: "contacts" }),
);

const leaseMs = 60_000;

for (const dialect of dialects) {
  layer(testEngineLayer({ dialect, connectors: [acmeConnector] }), { timeout: 60_000 })(
    `outbox claims on ${dialect}`,
    (it) => {
      it.effect("a drain never claims its own entries in flight; its next attempt takes them back", () =>
        Effect.gen(function* () {
          const outbox = yield* PushOutbox;
          const scope = yield* scopeOf;
          const timing = { critical: false, delayMs: 0 };
          for (const localId of ["a", "b", "c"]) {
            yield* outbox.create(scope, { localId, fields: { name: localId } }, timing);
          }
          const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms));
          const claim = (claimer: string, drainStartedAt: Date, limit: number) =>
            Effect.map(
              outbox.claim(scope, { claimer, limit, leaseMs, which: "all", drainStartedAt, creates: true }),
              (claimed) => claimed.map((c) => c.record?.localId).sort(),
            );

          const started = yield* now;
          const first = yield* claim("job-1", started, 1);
          expect(first).toHaveLength(1);
          yield* TestClock.adjust("1 second");
          // The same drain claims again while its first batch is in flight: another entry.
          const second = yield* claim("job-1", started, 1);
          expect(second).toHaveLength(1);
          expect(second).not.toEqual(first);
          // Another drain gets only what job-1 does not hold.
          const third = ["a", "b", "c"].filter((id) => !first.includes(id) && !second.includes(id));
          expect(yield* claim("job-2", yield* now, 10)).toEqual(third);

          // job-1's next attempt (the first died) takes back both of its claims, not job-2's.
          yield* TestClock.adjust("1 second");
          expect(yield* claim("job-1", yield* now, 10)).toEqual([...first, ...second].sort());
          // Within that attempt, nothing more: what it claimed is in flight.
          expect(yield* claim("job-1", yield* now, 10)).toEqual([]);

          // Once the leases lapse, any drain may take everything.
          yield* TestClock.adjust(leaseMs + 1_000);
          expect(yield* claim("job-3", yield* now, 10)).toEqual(["a", "b", "c"]);
        }),
      );
    },
  );
}
