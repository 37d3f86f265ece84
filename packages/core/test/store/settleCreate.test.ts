import { expect, layer } from "@effect/vitest";
import { PushOutbox, RecordStore } from "@tandem/core";
import { acmeConnector, createTestConnection, dialects, testEngineLayer } from "@tandem/testkit";
import { Effect, Option } from "effect";

/*
 * The settlement of a pushed create removes the copy a pull stored first under the vendor's new id
 * (the webhook or delta echo of our own create). It must never remove the created record itself:
 * a record that already holds the vendor's id with a host id attached (initial matching linked it
 * to that vendor record while its create was in flight) is ours, not an echo. Seen in the two-way
 * matrix's echo-loop scenario: the record a host created was gone after its push (1 run in 9 of
 * the three vendors' matrices beside a CPU hog, and once in CI).
 */

const scopeOf = Effect.map(
  createTestConnection("acme-crm", { baseUrl: "https://acme.test/api", token: "t" }),
  (ids) => ({ ...ids, entity: "contacts" }),
);

for (const dialect of dialects) {
  layer(testEngineLayer({ dialect, connectors: [acmeConnector] }), { timeout: 60_000 })(
    `settling a pushed create on ${dialect}`,
    (it) => {
      it.effect("keeps a record that took the vendor's id meanwhile; removes only an echo with no host id", () =>
        Effect.gen(function* () {
          const outbox = yield* PushOutbox;
          const store = yield* RecordStore;
          const scope = yield* scopeOf;
          const timing = { critical: true, delayMs: 0 };
          // Two host records, each created locally, both claimed by a drain.
          yield* outbox.create(scope, { localId: "host-linked", fields: { name: "Ada" } }, timing);
          yield* outbox.create(scope, { localId: "host-echoed", fields: { name: "Grace" } }, timing);
          const claimed = yield* outbox.claim(scope, {
            claimer: "drain-1",
            limit: 10,
            leaseMs: 60_000,
            which: "all",
            drainStartedAt: new Date(Date.now() - 1_000),
            creates: true,
          });
          expect(claimed).toHaveLength(2);
          const of = (localId: string) => claimed.find((c) => c.record?.localId === localId)!;
          const written = (localId: string, vendorId: string) => ({
            _tag: "Written" as const,
            entry: of(localId).entry,
            record: of(localId).record!,
            operation: "create" as const,
            remote: { externalId: vendorId, data: { id: vendorId, name: "vendor" }, remoteUpdatedAt: new Date() },
          });
          // While the creates were in flight: the first record was linked to vendor record v-1 ...
          const linked = yield* outbox.link(scope, of("host-linked").record!.externalId, "v-1");
          expect(linked?.externalId).toBe("v-1");
          // ... and a pull stored the vendor's copy of the second (v-2) before its settlement.
          yield* store.upsert(scope, [
            { externalId: "v-2", data: { id: "v-2", name: "vendor" }, remoteUpdatedAt: null },
          ]);

          yield* outbox.settle(scope, written("host-linked", "v-1"));
          yield* outbox.settle(scope, written("host-echoed", "v-2"));

          const kept = Option.getOrUndefined(yield* store.getByLocalId(scope, "host-linked"));
          expect(kept).toMatchObject({ externalId: "v-1", localId: "host-linked", deletedAt: null });
          const echoed = Option.getOrUndefined(yield* store.getByLocalId(scope, "host-echoed"));
          expect(echoed).toMatchObject({ externalId: "v-2", localId: "host-echoed", syncStatus: "synced" });
          // The echo's copy went (ids are unique per entity): the record under v-2 is the host's.
          expect(Option.getOrUndefined(yield* store.get(scope, "v-2"))?.localId).toBe("host-echoed");
        }),
      );
    },
  );
}
