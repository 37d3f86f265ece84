import { expect, layer } from "@effect/vitest";
import { Database, EntitySync, LocalChanges, Records, type SyncTarget, setConnectionSettings } from "@tandem/core";
import {
  conflictsOf,
  dialects,
  eventually,
  hubSpotHandlers,
  startQueueWorker,
  storedRecord,
  testEngineLayer,
} from "@tandem/testkit";
import { Effect, TestServices } from "effect";
import { delay, HttpResponse, http } from "msw";
import hubspot from "../src/index.ts";
import { hubSpotOverMsw } from "./support/hubSpotOverMsw.ts";

/*
 * Per-connection sync settings change what the engine does, over the HubSpot fake (MSW): a
 * disabled entity and the directions, the conflict policy of the connection (source priority,
 * the LLM resolver with its endpoint mocked here: a valid answer, an invalid one, a timeout),
 * critical fields and the push interval, and the delete-against-edit rule both ways under both
 * rules, each leaving an audit row.
 */

const llmUrl = "https://llm.settings.test/v1";
/** What the mocked LLM answers next, and the authorization headers it saw. */
const llmAnswer: () => Promise<Response> = async () => HttpResponse.json({});
const llmAuth: Array<string | null> = [];
const llm = http.post(`${llmUrl}/chat/completions`, ({ request }) => {
  llmAuth.push(request.headers.get("authorization"));
  return llmAnswer();
});
const completion = (content: string) => HttpResponse.json({ choices: [{ message: { content } }] });

const { fake, server, connect } = hubSpotOverMsw({ baseUrl: "https://hubspot.settings.test", handlers: [llm] });

const settle = (target: SyncTarget, contacts: unknown) =>
  setConnectionSettings(target.tenantId, target.connectionId, { contacts });

const schedulesOf = (target: SyncTarget) =>
  Effect.flatMap(Database, (db) =>
    db.query((k) =>
      k
        .selectFrom("schedules")
        .select("name")
        .where("connection_id", "=", target.connectionId)
        .orderBy("name")
        .execute(),
    ),
  ).pipe(
    Effect.orDie,
    Effect.map((rows) => rows.map((r) => r.name.split(":").slice(2).join(":"))),
  );

const contactWrites = () =>
  fake
    .requests()
    .filter((r) => r.path.startsWith("/crm/v3/objects/contacts") && r.method !== "GET" && !r.path.includes("search"));

const live = TestServices.provideLive;

for (const dialect of dialects)
  layer(testEngineLayer({ dialect, connectors: [hubspot] }), { timeout: 120_000 })(
    `per-connection sync settings drive the engine (HubSpot fake) on ${dialect}`,
    (it) => {
      const test = <A, E>(name: string, body: () => Effect.Effect<A, E, any>) =>
        it.effect(name, () => live(Effect.scoped(body())) as Effect.Effect<A, E, never>);

      test("a disabled entity is neither pulled nor changed locally, and loses its schedules", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const target = yield* connect();
          const [a] = fake.seedContacts(2);
          yield* settle(target, { enabled: false });
          expect(yield* schedulesOf(target)).not.toContain("contacts:delta");
          const run = yield* engine.run({ ...target, mode: "full" });
          expect(run).toMatchObject({ created: 0, pages: 0 });
          const refused = yield* (yield* LocalChanges)
            .update(target.tenantId, { ...target, externalId: a!.id, fields: { jobTitle: "x" } })
            .pipe(Effect.flip);
          expect(refused._tag).toBe("PreconditionFailed");
          expect(refused.message).toContain("disabled");
          // Enabled again: the schedules come back and a run pulls.
          yield* settle(target, null);
          expect(yield* schedulesOf(target)).toEqual(expect.arrayContaining(["contacts:delta", "contacts:reconcile"]));
          expect((yield* engine.run({ ...target, mode: "full" })).created).toBe(2);
        }));

      test("direction push: no pulls scheduled or run, local edits pushed; direction pull: no push", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const records = yield* Records;
          const target = yield* connect();
          const [a] = fake.seedContacts(1);
          yield* engine.run({ ...target, mode: "full" });
          yield* settle(target, { direction: "push" });
          expect(yield* schedulesOf(target)).not.toContain("contacts:delta");
          fake.seedContacts(1);
          expect(yield* engine.run({ ...target, mode: "delta" })).toMatchObject({ created: 0, pages: 0 });
          yield* records.update(target.tenantId, { ...target, externalId: a!.id, fields: { jobTitle: "Pushed" } });
          expect((yield* engine.run({ ...target, mode: "push" })).updated).toBe(1);
          expect(fake.store.get("contacts", a!.id)?.properties.jobtitle).toBe("Pushed");

          // Pull-only: a change waiting in the outbox (made before) is not pushed.
          yield* records.update(target.tenantId, { ...target, externalId: a!.id, fields: { jobTitle: "Held" } });
          yield* settle(target, { direction: "pull" });
          expect(yield* engine.run({ ...target, mode: "push" })).toMatchObject({ updated: 0, created: 0 });
          expect(fake.store.get("contacts", a!.id)?.properties.jobtitle).toBe("Pushed");
          expect(yield* schedulesOf(target)).toContain("contacts:delta");
        }));

      test("critical fields and the push interval come from the connection's settings", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const records = yield* Records;
          const target = yield* connect();
          const [a, b] = fake.seedContacts(2);
          yield* engine.run({ ...target, mode: "full" });
          yield* settle(target, { criticalFields: ["phone"], schedules: { pushIntervalMs: 600_000 } });
          yield* startQueueWorker;
          const slow = yield* records.update(target.tenantId, {
            ...target,
            externalId: a!.id,
            fields: { jobTitle: "Later" },
          });
          expect(slow.pushImmediately).toBe(false);
          const urgent = yield* records.update(target.tenantId, {
            ...target,
            externalId: b!.id,
            fields: { phone: "+1 555" },
          });
          expect(urgent.pushImmediately).toBe(true);
          yield* eventually(
            "the critical change in HubSpot",
            () => fake.store.get("contacts", b!.id)?.properties.phone === "+1 555",
          );
          // The other waits for its ten-minute interval: after the critical one went, it still has not.
          yield* Effect.sleep("1 second");
          expect(fake.store.get("contacts", a!.id)?.properties.jobtitle).not.toBe("Later");
          expect((yield* storedRecord(target, a!.id)).syncStatus).toBe("pending");
        }));

      test("the connection's conflict policy settles a pull: source priority by field", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const local = yield* LocalChanges;
          const target = yield* connect();
          const [a] = fake.seedContacts(1);
          yield* engine.run({ ...target, mode: "full" });
          yield* settle(target, {
            conflictPolicy: { kind: "source-priority", default: "remote", fieldOwners: { jobTitle: "local" } },
          });
          yield* local.update(target.tenantId, {
            ...target,
            externalId: a!.id,
            fields: { jobTitle: "Local", phone: "1" },
          });
          fake.store.update("contacts", a!.id, { jobtitle: "Remote", phone: "2" });
          yield* engine.run({ ...target, mode: "delta" });
          const stored = yield* storedRecord(target, a!.id);
          expect(stored.data).toMatchObject({ jobTitle: "Local", phone: "2" });
          const [row] = yield* conflictsOf(target, a!.id);
          expect(row).toMatchObject({ status: "resolved", resolvedBy: "policy:source-priority" });
        }));

      test("the LLM resolver set on the connection: a valid answer resolves; prose and a timeout leave it open", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const local = yield* LocalChanges;
          const target = yield* connect();
          const [a, b, c] = fake.seedContacts(3);
          yield* engine.run({ ...target, mode: "full" });
          yield* settle(target, {
            conflictPolicy: { kind: "llm", baseUrl: llmUrl, model: "m1", apiKey: "sk-llm", timeoutMs: 2_000 },
          });
          for (const [contact, title] of [
            [a!, "A"],
            [b!, "B"],
            [c!, "C"],
          ] as const) {
            yield* local.update(target.tenantId, {
              ...target,
              externalId: contact.id,
              fields: { jobTitle: `Local ${title}` },
            });
            fake.store.update("contacts", contact.id, { jobtitle: `Remote ${title}` });
          }
          // a: a valid answer; b: prose; c: no answer within the timeout.
          const answers = [
            async () => completion(JSON.stringify({ jobTitle: "Merged A" })),
            async () => completion("I think the local one is better."),
            async () => {
              await delay(15_000);
              return completion(JSON.stringify({ jobTitle: "Too late" }));
            },
          ];
          const byTitle = (body: string) => (body.includes("Remote A") ? 0 : body.includes("Remote B") ? 1 : 2);
          server.use(
            http.post(`${llmUrl}/chat/completions`, async ({ request }) => {
              llmAuth.push(request.headers.get("authorization"));
              return answers[byTitle(await request.text())]!();
            }),
          );
          yield* engine.run({ ...target, mode: "delta" });
          server.resetHandlers(...hubSpotHandlers(fake), llm);
          // The key set on the connection was decrypted and sent.
          expect(llmAuth.filter((h) => h === "Bearer sk-llm").length).toBeGreaterThanOrEqual(3);
          expect((yield* storedRecord(target, a!.id)).data.jobTitle).toBe("Merged A");
          expect((yield* conflictsOf(target, a!.id))[0]).toMatchObject({ status: "resolved", resolvedBy: "llm:m1" });
          const prose = (yield* conflictsOf(target, b!.id))[0]!;
          expect(prose).toMatchObject({ status: "open" });
          expect(prose.reason).toContain("not JSON");
          expect((yield* storedRecord(target, b!.id)).syncStatus).toBe("conflict");
          const late = (yield* conflictsOf(target, c!.id))[0]!;
          expect(late.status).toBe("open");
          expect(late.reason).not.toBeNull();
          expect((yield* storedRecord(target, c!.id)).syncStatus).toBe("conflict");
        }));

      test("remote delete against a local edit, edit wins (default): recreated at HubSpot, audited", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const records = yield* Records;
          const target = yield* connect();
          const [a] = fake.seedContacts(1);
          yield* engine.run({ ...target, mode: "full" });
          yield* records.update(target.tenantId, { ...target, externalId: a!.id, fields: { jobTitle: "Kept" } });
          fake.store.archive("contacts", a!.id);
          yield* engine.run({ ...target, mode: "delta" });
          const [audit] = yield* conflictsOf(target, a!.id);
          expect(audit).toMatchObject({
            status: "resolved",
            policy: "delete-against-edit:edit-wins",
            remote: { deleted: true },
            local: { jobTitle: "Kept" },
            resolution: { action: "recreated at the vendor" },
          });
          yield* engine.run({ ...target, mode: "push" });
          const recreated = fake.live("contacts").find((o) => o.properties.jobtitle === "Kept");
          expect(recreated).toBeDefined();
          expect(recreated!.id).not.toBe(a!.id);
          const stored = yield* storedRecord(target, recreated!.id);
          expect(stored).toMatchObject({ syncStatus: "synced", deletedAt: null });
          // A later delta reporting the old id's deletion again deletes nothing.
          yield* engine.run({ ...target, mode: "delta" });
          expect((yield* storedRecord(target, recreated!.id)).deletedAt).toBeNull();
        }));

      test("a record reconciliation finds gone while edited locally is recreated (edit wins), audited", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const records = yield* Records;
          const target = yield* connect();
          const [a, b] = fake.seedContacts(40); // enough that one deletion is no mass deletion
          yield* engine.run({ ...target, mode: "full" });
          yield* records.update(target.tenantId, { ...target, externalId: a!.id, fields: { jobTitle: "Still here" } });
          fake.store.archive("contacts", a!.id);
          fake.store.archive("contacts", b!.id);
          const run = yield* engine.run({ ...target, mode: "reconcile" });
          // b had no local edit: deleted as before; a is kept for its create.
          expect(run.deleted).toBe(1);
          expect((yield* storedRecord(target, b!.id)).deletedAt).not.toBeNull();
          const [audit] = yield* conflictsOf(target, a!.id);
          expect(audit).toMatchObject({ policy: "delete-against-edit:edit-wins", remote: { deleted: true } });
          yield* engine.run({ ...target, mode: "push" });
          expect(fake.live("contacts").some((o) => o.properties.jobtitle === "Still here" && o.id !== a!.id)).toBe(
            true,
          );
        }));

      test("remote delete against a local edit, delete wins: deleted, the edit dropped to the audit", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const records = yield* Records;
          const target = yield* connect();
          const [a] = fake.seedContacts(1);
          yield* engine.run({ ...target, mode: "full" });
          yield* settle(target, { deleteAgainstEdit: "delete-wins" });
          yield* records.update(target.tenantId, { ...target, externalId: a!.id, fields: { jobTitle: "Dropped" } });
          fake.store.archive("contacts", a!.id);
          yield* engine.run({ ...target, mode: "delta" });
          const stored = yield* storedRecord(target, a!.id);
          expect(stored.deletedAt).not.toBeNull();
          expect(stored.syncStatus).toBe("synced");
          const [audit] = yield* conflictsOf(target, a!.id);
          expect(audit).toMatchObject({
            policy: "delete-against-edit:delete-wins",
            local: { jobTitle: "Dropped" },
            remote: { deleted: true },
          });
          const before = contactWrites().length;
          yield* engine.run({ ...target, mode: "push" });
          expect(contactWrites().length).toBe(before);
          expect(fake.live("contacts").some((o) => o.properties.jobtitle === "Dropped")).toBe(false);
        }));

      test("local delete against a remote edit, edit wins (default): the delete cancelled, restored, audited", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const records = yield* Records;
          const target = yield* connect();
          const [a] = fake.seedContacts(1);
          yield* engine.run({ ...target, mode: "full" });
          yield* records.delete(target.tenantId, { ...target, externalId: a!.id });
          fake.store.update("contacts", a!.id, { jobtitle: "Edited remotely" });
          yield* engine.run({ ...target, mode: "delta" });
          const stored = yield* storedRecord(target, a!.id);
          expect(stored).toMatchObject({
            deletedAt: null,
            syncStatus: "synced",
            data: { jobTitle: "Edited remotely" },
          });
          const [audit] = yield* conflictsOf(target, a!.id);
          expect(audit).toMatchObject({
            policy: "delete-against-edit:edit-wins",
            local: { deleted: true },
            remote: { jobTitle: "Edited remotely" },
          });
          yield* engine.run({ ...target, mode: "push" });
          expect(fake.store.get("contacts", a!.id)?.archived).toBe(false);
        }));

      test("local delete against a remote edit, delete wins: the delete is pushed, the remote edit audited", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const records = yield* Records;
          const target = yield* connect();
          const [a] = fake.seedContacts(1);
          yield* engine.run({ ...target, mode: "full" });
          yield* settle(target, { deleteAgainstEdit: "delete-wins" });
          yield* records.delete(target.tenantId, { ...target, externalId: a!.id });
          fake.store.update("contacts", a!.id, { jobtitle: "Edited remotely" });
          yield* engine.run({ ...target, mode: "delta" });
          const [audit] = yield* conflictsOf(target, a!.id);
          expect(audit).toMatchObject({
            policy: "delete-against-edit:delete-wins",
            local: { deleted: true },
            remote: { jobTitle: "Edited remotely" },
          });
          yield* engine.run({ ...target, mode: "push" });
          expect(fake.store.get("contacts", a!.id)?.archived).toBe(true);
          expect((yield* storedRecord(target, a!.id)).syncStatus).toBe("synced");
        }));
    },
  );
