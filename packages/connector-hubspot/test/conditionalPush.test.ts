import { EntitySync, Records } from "@tandem/core";
import { createHubSpotFake, createManualClock, hubSpotFakeToken, hubSpotHandlers, storedRecord } from "@tandem/testkit";
import { describeConditionalPush } from "@tandem/testkit/engine-suites";
import { Effect } from "effect";
import { expect } from "vitest";
import hubspot from "../src/index.ts";

/*
 * Pushes to HubSpot are conditional, deletes included (testkit's conditional-push suite), over the
 * HubSpot fake (MSW) on PostgreSQL. HubSpot has no conditional write: its connector reads the
 * versions (`batch/read`) just before writing; two deletes go as one batch/archive. A deleted
 * contact stays in the fake, archived. Here too: an entity without conditional writes, whose
 * versions the engine reads and compares itself.
 */

const baseUrl = "https://hubspot.conditional-push.test";
const clock = createManualClock(Date.UTC(2026, 4, 1));
const fake = createHubSpotFake({ baseUrl, clock });
const tick = () => clock.advance(1_000);
const editRemotely = (id: string) => fake.store.update("contacts", id, { jobtitle: "Edited remotely" });

/** HubSpot contacts with neither batch nor conditional writes: the engine reads and compares versions itself. */
const plainWrites = {
  ...hubspot,
  name: "hubspot-plain-writes",
  entities: {
    ...hubspot.entities,
    contacts: {
      ...hubspot.entities.contacts,
      write: { ...hubspot.entities.contacts.write!, conditional: false, batch: undefined },
    },
  },
};

describeConditionalPush(
  hubspot,
  {
    vendor: "HubSpot",
    handlers: hubSpotHandlers(fake),
    config: { baseUrl, accessToken: hubSpotFakeToken },
    entity: "contacts",
    reset: () => fake.reset(),
    close: () => fake.close(),
    tick,
    seed: (n) => fake.seedContacts(n).map((contact) => contact.id),
    remote: (id) => {
      const contact = fake.store.get("contacts", id)!;
      return { deleted: contact.archived, fields: contact.properties };
    },
    editRemotely,
    edited: { remote: { jobtitle: "Edited remotely" }, local: { jobTitle: "Edited remotely" } },
    // The write, after the version check's batch/read.
    writeRequest: { method: "POST", path: /\/crm\/v3\/objects\/contacts\/batch\/update$/ },
    inFlightEdits: {
      first: { jobTitle: "First" },
      second: {
        local: { jobTitle: "Second", phone: "+15550100" },
        remote: { jobtitle: "Second", phone: "+15550100" },
      },
    },
  },
  {
    connectors: [plainWrites],
    extraTests: ({ test, setup, auditOf }) =>
      test("an entity without conditional writes: the engine's own version check stops the delete (edit wins)", () =>
        Effect.gen(function* () {
          const engine = yield* EntitySync;
          const records = yield* Records;
          const target = yield* setup({ connector: plainWrites.name });
          const [a] = fake.seedContacts(1);
          yield* engine.run({ ...target, mode: "full" });
          tick();
          yield* records.delete(target.tenantId, { ...target, externalId: a!.id });
          tick();
          editRemotely(a!.id);
          tick();
          yield* engine.run({ ...target, mode: "push" });
          yield* engine.run({ ...target, mode: "push" });
          expect(fake.store.get("contacts", a!.id)).toMatchObject({ archived: false });
          expect(yield* storedRecord(target, a!.id)).toMatchObject({
            deletedAt: null,
            syncStatus: "synced",
            data: { jobTitle: "Edited remotely" },
          });
          expect(yield* auditOf(target, a!.id)).toEqual([
            expect.objectContaining({ policy: "delete-against-edit:edit-wins", local: { deleted: true } }),
          ]);
        })),
  },
);
