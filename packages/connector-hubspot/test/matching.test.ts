import { expect, layer } from "@effect/vitest";
import { Conflicts, EntitySync, LocalChanges, Records, type SyncTarget } from "@tandem/core";
import {
  createHubSpotFake,
  createTestConnection,
  dialects,
  hubSpotFakeToken,
  hubSpotHandlers,
  requestGate,
  testEngineLayer,
} from "@tandem/testkit";
import { Effect, Fiber, TestServices } from "effect";
import { setupServer } from "msw/node";
import { afterAll, beforeAll } from "vitest";
import hubspot from "../src/index.ts";

/*
 * Initial matching through the engine: records the host created locally (not pushed yet) meet
 * contacts HubSpot already has. The push (asked for here, so the test is deterministic) matches
 * them by normalized email before it creates anything: a match takes HubSpot's id and merges,
 * duplicates are held for an operator, the rest are created.
 */

const baseUrl = "https://hubspot.matching.test";
const fake = createHubSpotFake({ baseUrl });
const server = setupServer(...hubSpotHandlers(fake));
beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
afterAll(() => {
  fake.close();
  server.close();
});

const setup = Effect.gen(function* () {
  fake.reset();
  const ids = yield* createTestConnection("hubspot", { baseUrl, accessToken: hubSpotFakeToken });
  return { ...ids, entity: "contacts" } satisfies SyncTarget;
});

/** Contact creates HubSpot received (single and batch). */
const creates = () =>
  fake
    .requests()
    .filter(
      (r) =>
        r.method === "POST" &&
        (r.path === "/crm/v3/objects/contacts" || r.path.startsWith("/crm/v3/objects/contacts/batch/create")),
    );

/** An object HubSpot has before the connection starts (wire property names). */
const existing = (type: "contacts" | "companies", properties: Record<string, unknown>) => {
  const result = fake.store.create(type, properties);
  if ("failure" in result) throw new Error(`the fake refused the ${type}: ${result.failure.message}`);
  return result.object;
};
const contact = (properties: Record<string, unknown>) => existing("contacts", properties);
const company = (properties: Record<string, unknown>) => existing("companies", properties);

const live = TestServices.provideLive;

for (const dialect of dialects) {
  layer(testEngineLayer({ dialect, connectors: [hubspot] }), { timeout: 120_000 })(
    `initial matching of local contacts with HubSpot's on ${dialect}`,
    (it) => {
      const test = <A, E>(name: string, body: () => Effect.Effect<A, E, any>) =>
        it.effect(name, () => live(Effect.scoped(body())) as Effect.Effect<A, E, never>);

      test("a match takes HubSpot's id and merges, duplicates are held, the rest are created; nothing duplicated", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const records = yield* Records;
          const local = yield* LocalChanges;
          const conflicts = yield* Conflicts;
          const target = yield* setup;
          const ann = contact({ email: "ann@example.com", firstname: "Ann" });
          const cat = contact({ email: "cat@example.com", firstname: "Catherine" });
          const eve = contact({ email: "eve@example.com", firstname: "Eve" });
          contact({ email: "vendor-only@example.com", firstname: "Vic" });
          const before = fake.live("contacts").length;

          // The host's records, created before the connection ever pushed.
          const create = (localId: string, fields: Record<string, unknown>) =>
            records.create(target.tenantId, { ...target, localId, fields });
          // Same email as HubSpot's Ann, a field HubSpot lacks: merges cleanly.
          yield* create("h-ann", { email: "ann@example.com", jobTitle: "Engineer" });
          // Same email up to case and spaces, a different first name: both sides set it, a conflict.
          yield* create("h-cat", { email: "  Cat@Example.COM ", firstName: "Cat" });
          // Two local records claim HubSpot's one Eve: ambiguous too.
          yield* create("h-eve-1", { email: "eve@example.com" });
          yield* create("h-eve-2", { email: "EVE@example.com" });
          // No HubSpot contact has it: created.
          yield* create("h-new", { email: "new@example.com", firstName: "Nina" });
          expect(creates()).toHaveLength(0);

          const pushed = yield* engine.run({ ...target, mode: "push" });
          expect(pushed).toMatchObject({ created: 1, errors: [] });

          // Exactly one contact was created at HubSpot: the one no contact matched.
          expect(creates()).toHaveLength(1);
          expect(fake.live("contacts")).toHaveLength(before + 1);
          const nina = fake.live("contacts").find((o) => o.properties.email === "new@example.com")!;
          expect(yield* records.get(target.tenantId, { ...target, localId: "h-new" })).toMatchObject({
            externalId: nina.id,
            syncStatus: "synced",
          });

          // Ann: linked to HubSpot's contact, both sides' fields merged, the host's one pushed.
          const annRecord = yield* records.get(target.tenantId, { ...target, localId: "h-ann" });
          expect(annRecord).toMatchObject({
            externalId: ann.id,
            localId: "h-ann",
            syncStatus: "synced",
            data: { email: "ann@example.com", firstName: "Ann", jobTitle: "Engineer" },
          });
          expect(fake.store.get("contacts", ann.id)!.properties.jobtitle).toBe("Engineer");
          expect(yield* records.get(target.tenantId, { ...target, externalId: ann.id })).toEqual(annRecord);

          // Cat: linked, but the first name differs on both sides: a conflict under the entity's
          // (manual) policy, recorded with both versions; HubSpot's value is not overwritten.
          const catRecord = yield* records.get(target.tenantId, { ...target, localId: "h-cat" });
          expect(catRecord).toMatchObject({ externalId: cat.id, syncStatus: "conflict" });
          const open = yield* conflicts.list(target.tenantId, { connectionId: target.connectionId, status: "open" });
          const catConflict = open.items.find((c) => c.externalId === cat.id);
          expect(catConflict).toMatchObject({
            fields: expect.arrayContaining(["firstName"]),
            local: expect.objectContaining({ firstName: "Cat" }),
            remote: expect.objectContaining({ firstName: "Catherine" }),
          });
          expect(fake.store.get("contacts", cat.id)!.properties.firstname).toBe("Catherine");

          // The ambiguous ones: not pushed, failed with the candidates named, listed as dead pushes.
          for (const localId of ["h-eve-1", "h-eve-2"]) {
            const e = yield* records.get(target.tenantId, { ...target, localId });
            expect(e).toMatchObject({ externalId: null, syncStatus: "failed" });
            expect(e.syncError).toContain("ambiguous match");
            expect(e.syncError).toContain(eve.id);
          }
          const dead = yield* local.deadPushes(target.tenantId, { connectionId: target.connectionId });
          expect(dead.filter((d) => d.operation === "create")).toHaveLength(2);

          // Matching runs once: a later push creates nothing again, and a new local record is
          // created even though it could have matched (initial matching is for the first push).
          expect(yield* engine.run({ ...target, mode: "push" })).toMatchObject({ created: 0, errors: [] });
          expect(creates()).toHaveLength(1);

          // An operator discards a held record: it is no longer pending, and never pushed.
          yield* local.discardDeadPush(target.tenantId, dead[0]!.id);
          expect(yield* local.deadPushes(target.tenantId, { connectionId: target.connectionId })).toHaveLength(1);
          yield* engine.run({ ...target, mode: "push" });
          expect(creates()).toHaveLength(1);
        }));

      test("several HubSpot companies with the record's domain: ambiguous, held, none created or changed", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const records = yield* Records;
          const target = { ...(yield* setup), entity: "companies" };
          const acme1 = company({ name: "Acme", domain: "acme.com" });
          const acme2 = company({ name: "Acme Europe", domain: "ACME.com" });
          const globex = company({ name: "Globex", domain: "globex.com" });
          yield* records.create(target.tenantId, {
            ...target,
            localId: "c-acme",
            fields: { name: "ACME Corp", domain: "https://www.acme.com/" },
          });
          yield* records.create(target.tenantId, {
            ...target,
            localId: "c-globex",
            fields: { name: "Globex", domain: "www.globex.com" },
          });
          const companyCreates = () =>
            fake.requests().filter((r) => r.method === "POST" && r.path.startsWith("/crm/v3/objects/companies"));
          const writes = () => fake.requests().filter((r) => r.method === "PATCH").length;

          yield* engine.run({ ...target, mode: "push" });
          expect(companyCreates()).toHaveLength(0);
          expect(writes()).toBe(0);
          const held = yield* records.get(target.tenantId, { ...target, localId: "c-acme" });
          expect(held).toMatchObject({ externalId: null, syncStatus: "failed" });
          expect(held.syncError).toContain(acme1.id);
          expect(held.syncError).toContain(acme2.id);
          expect(fake.store.get("companies", acme1.id)!.properties.name).toBe("Acme");
          // Globex matched by domain up to "www."; the two spellings of the domain are the one
          // field both sides set differently: a conflict on it alone, nothing pushed meanwhile.
          expect(yield* records.get(target.tenantId, { ...target, localId: "c-globex" })).toMatchObject({
            externalId: globex.id,
            syncStatus: "conflict",
          });
          const open = yield* (yield* Conflicts).list(target.tenantId, { connectionId: target.connectionId });
          expect(open.items.find((c) => c.externalId === globex.id)?.fields).toEqual(["domain"]);
        }));

      test("a contact pulled before the first push is matched too: one record, with the host's id", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const records = yield* Records;
          const target = yield* setup;
          const ann = contact({ email: "ann@example.com", firstname: "Ann" });
          yield* engine.run({ ...target, mode: "full" });
          yield* records.create(target.tenantId, {
            ...target,
            localId: "h-ann",
            fields: { email: "ann@example.com", phone: "+1 555 0100" },
          });
          yield* engine.run({ ...target, mode: "push" });
          expect(creates()).toHaveLength(0);
          const byHost = yield* records.get(target.tenantId, { ...target, localId: "h-ann" });
          expect(byHost).toMatchObject({ externalId: ann.id, syncStatus: "synced" });
          expect(yield* records.get(target.tenantId, { ...target, externalId: ann.id })).toEqual(byHost);
          const all = yield* records.list(target.tenantId, { ...target, limit: 100 });
          expect(all.items).toHaveLength(1);
          expect(fake.store.get("contacts", ann.id)!.properties.phone).toBe("+1 555 0100");
        }));

      test("a drain that began before the first local create leaves it to a drain that matches first", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const records = yield* Records;
          const target = yield* setup;
          const ann = contact({ email: "ann@example.com", firstname: "Ann" });
          const vic = contact({ email: "vic@example.com", firstname: "Vic" });
          yield* engine.run({ ...target, mode: "full" });
          yield* records.update(target.tenantId, { ...target, externalId: ann.id, fields: { jobTitle: "Engineer" } });
          // A drain of the edit, held at HubSpot's batch update: nothing was created locally when it
          // began, so it ran no matching.
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
          const first = yield* Effect.fork(engine.drain(target, { claimer: "drain-before", which: "all" }));
          yield* Effect.promise(() => gate.arrived);
          // The host creates Vic's record meanwhile. Before, the drain in flight took the create
          // after its batch: HubSpot refused the duplicate email, and nothing linked the two.
          yield* records.create(target.tenantId, { ...target, localId: "h-vic", fields: { email: "vic@example.com" } });
          gate.release();
          expect(yield* Fiber.join(first)).toMatchObject({ updated: 1, created: 0, errors: [] });
          expect(yield* records.get(target.tenantId, { ...target, localId: "h-vic" })).toMatchObject({
            externalId: null,
            syncStatus: "pending",
          });

          // The next drain (the one the create queued) matches first: Vic's record is linked.
          yield* engine.drain(target, { claimer: "drain-after", which: "all" });
          expect(creates()).toHaveLength(0);
          expect(yield* records.get(target.tenantId, { ...target, localId: "h-vic" })).toMatchObject({
            externalId: vic.id,
            syncStatus: "synced",
          });
          expect(fake.store.get("contacts", ann.id)!.properties.jobtitle).toBe("Engineer");
        }));
    },
  );
}
