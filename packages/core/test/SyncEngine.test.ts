import { expect, layer } from "@effect/vitest";
import { RecordStore, SyncEngine, type SyncTarget } from "@tandem/core";
import {
  AcmeCrm,
  acmeConnector,
  acmeEffectConnector,
  createTestConnection,
  dialects,
  startAcmeServer,
  testEngineLayer,
} from "@tandem/testkit";
import { Chunk, Effect, Option, Stream, TestServices } from "effect";
import { afterAll, beforeAll } from "vitest";

const acme = new AcmeCrm();
let server: ReturnType<typeof startAcmeServer>;
beforeAll(() => {
  server = startAcmeServer(acme);
});
afterAll(() => server.close());

/** A fresh fake API and a new connection to it (records of earlier tests live under other connections). */
const setup = (options: { connector?: string; pageSize?: number } = {}) =>
  Effect.gen(function* () {
    acme.reset();
    const ids = yield* createTestConnection(options.connector ?? "acme-crm", {
      baseUrl: acme.baseUrl,
      token: acme.token,
      pageSize: options.pageSize ?? 10,
    });
    return { ...ids, entity: "contacts" } satisfies SyncTarget;
  });

/**
 * Engine tests run on the real clock: the fake API has its own clock, and the
 * rate budget would wait forever on a TestClock nobody advances. (The rate
 * budget tests drive TestClock on purpose.)
 */
const live = TestServices.provideLive;

const stored = (target: SyncTarget, id: string) =>
  Effect.flatMap(RecordStore, (s) => s.get(target, id)).pipe(Effect.map(Option.getOrThrow));

const allChanges = (target: SyncTarget, after?: string) =>
  Effect.flatMap(RecordStore, (s) => s.changes(target, { after, limit: 1000 }));

for (const dialect of dialects) {
  layer(testEngineLayer(dialect, [acmeConnector, acmeEffectConnector]), { timeout: 60_000 })(
    `SyncEngine on ${dialect}`,
    (it) => {
      const test = <A, E>(name: string, body: () => Effect.Effect<A, E, any>) =>
        it.effect(name, () => live(body()) as Effect.Effect<A, E, never>);
      for (const connector of ["acme-crm", "acme-crm-effect"]) {
        test(`full sync stores every record, and a second run rewrites nothing (${connector})`, () =>
          Effect.gen(function* () {
            const engine = yield* SyncEngine;
            const store = yield* RecordStore;
            const target = yield* setup({ connector });
            acme.seed(25);
            const first = yield* engine.run({ ...target, mode: "full" });
            expect(first).toMatchObject({ created: 25, updated: 0, unchanged: 0, deleted: 0, errors: [], pages: 3 });
            expect(yield* store.count(target)).toBe(25);
            const c3 = yield* stored(target, "c000003");
            expect(c3.data).toMatchObject({ id: "c000003", email: "contact3@acme.test" });
            expect(c3.syncStatus).toBe("synced");
            expect(c3.remoteUpdatedAt?.toISOString()).toBe(acme.contacts.get("c000003")!.updatedAt);

            const feed = yield* allChanges(target);
            const second = yield* engine.run({ ...target, mode: "full" });
            expect(second).toMatchObject({ created: 0, updated: 0, unchanged: 25, errors: [] });
            // Same content hash: no rewrite, so no change event and no version bump.
            const after = yield* allChanges(target, feed.cursor);
            expect(after.records).toEqual([]);
            expect((yield* stored(target, "c000003")).version).toBe(1);
          }));
      }

      test("a record that fails to decode is an item error and the run goes on", () =>
        Effect.gen(function* () {
          const engine = yield* SyncEngine;
          const store = yield* RecordStore;
          const target = yield* setup();
          acme.seed(12);
          acme.faults.corrupt.set("c000003", { email: 42 });
          acme.faults.corrupt.set("c000005", { id: undefined });
          acme.faults.corrupt.set("c000007", { updatedAt: "not a date" });
          const result = yield* engine.run({ ...target, mode: "full" });
          expect(result.created).toBe(9);
          expect(result.errors).toHaveLength(3);
          expect(result.errors.map((e) => e.type)).toEqual(["InvalidRecord", "InvalidRecord", "InvalidRecord"]);
          expect(result.errors[0]).toMatchObject({ externalId: "c000003" });
          expect(result.errors[0]!.message).toContain("email");
          expect(result.errors[1]).toMatchObject({ externalId: "unknown" });
          expect(result.errors[2]).toMatchObject({ externalId: "c000007" });
          expect(yield* store.count(target)).toBe(9);
        }));
    },
  );
}

// Keeps Chunk/Stream imported for the tests added below.
void Chunk;
void Stream;
