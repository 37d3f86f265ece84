import { expect, layer } from "@effect/vitest";
import { Conflicts, EntitySync, Records } from "@tandem/core";
import { dialects, requestGate, testEngineLayer } from "@tandem/testkit";
import { Effect, Fiber, TestServices } from "effect";
import hubspot from "../src/index.ts";
import { hubSpotOverMsw } from "./support/hubSpotOverMsw.ts";

/*
 * A record edited locally while the batch that pushes its previous edit is at HubSpot. The batch's
 * settlement (one statement for all its records) stores the answer for the records still as they
 * were read, and keeps the newer edit of the one that moved, rebased on what was just written: its
 * next write (the same drain takes it again) is conditional on our own write, so it goes through
 * without a conflict.
 */

const { fake, server, connect } = hubSpotOverMsw({ baseUrl: "https://hubspot.in-flight.test" });

const live = TestServices.provideLive;

for (const dialect of dialects) {
  layer(testEngineLayer({ dialect, connectors: [hubspot] }), { timeout: 120_000 })(
    `edits while a batch push is in flight on ${dialect}`,
    (it) => {
      it.effect("a record edited during its batch write keeps the edit, and the next push writes it", () =>
        live(
          Effect.scoped(
            Effect.gen(function* () {
              const engine = yield* EntitySync;
              const records = yield* Records;
              const conflicts = yield* Conflicts;
              const target = yield* connect();
              const contacts = ["ann", "bob", "cat"].map((name) => {
                const created = fake.store.create("contacts", { email: `${name}@example.com`, firstname: name });
                if ("failure" in created) throw new Error(created.failure.message);
                return created.object.id;
              });
              yield* engine.run({ ...target, mode: "full" });
              const edit = (externalId: string, jobTitle: string) =>
                records.update(target.tenantId, { ...target, externalId, fields: { jobTitle } });
              for (const id of contacts) yield* edit(id, "First");

              // The batch of three is held at HubSpot's batch/update; Bob is edited again meanwhile.
              const gate = yield* Effect.acquireRelease(
                Effect.sync(() => {
                  const held = requestGate("POST", /\/crm\/v3\/objects\/contacts\/batch\/update$/);
                  server.use(held.handler);
                  return held;
                }),
                (held) =>
                  Effect.sync(() => {
                    held.release();
                    server.resetHandlers();
                  }),
              );
              const first = yield* Effect.fork(engine.drain(target, { claimer: "drain-1", which: "all" }));
              yield* Effect.promise(() => gate.arrived);
              const bob = contacts[1]!;
              yield* edit(bob, "Second");
              gate.release();
              // The drain settles the batch, then claims Bob's newer edit (changed while in flight,
              // it goes again) and writes it, conditional on the version of our own first write.
              expect(yield* Fiber.join(first)).toMatchObject({ updated: 4, errors: [] });
              expect(
                fake.requests().filter((r) => r.method === "POST" && r.path.endsWith("/contacts/batch/update")),
              ).toHaveLength(2);
              expect(fake.store.get("contacts", bob)!.properties.jobtitle).toBe("Second");
              for (const id of contacts) {
                const jobTitle = id === bob ? "Second" : "First";
                expect(fake.store.get("contacts", id)!.properties.jobtitle).toBe(jobTitle);
                expect(yield* records.get(target.tenantId, { ...target, externalId: id })).toMatchObject({
                  syncStatus: "synced",
                  data: { jobTitle },
                });
              }
              // Had Bob's edit stayed on the base read before our write, HubSpot's record would have
              // looked moved, and the edit would have met our own first write as a conflict.
              const raised = yield* conflicts.list(target.tenantId, { connectionId: target.connectionId });
              expect(raised.items).toEqual([]);
            }),
          ),
        ),
      );
    },
  );
}
