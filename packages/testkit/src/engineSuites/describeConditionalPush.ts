import type { AnyConnector } from "@tandem/connector-sdk";
import { type EngineServices, EntitySync, Records, type SyncTarget, setConnectionSettings } from "@tandem/core";
import { Effect, Fiber, ManagedRuntime } from "effect";
import type { HttpHandler } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { conflictsOf, createTestConnection, storedRecord, testEngineLayer } from "../engine.ts";
import { requestGate } from "../msw/requestGate.ts";

/*
 * One suite for "pushes are conditional, deletes included", run by every connector whose entity
 * writes conditionally, over its vendor's fake (MSW) on PostgreSQL. A local delete meeting a
 * remote edit made since the last pull follows the delete-against-edit rule under both settings,
 * audited; a local edit made while a push is in flight (the write held at the fake's door) is
 * pushed next, not lost to our own write. How a vendor makes the push conditional (If-Match,
 * If-Unmodified-Since, a read of the versions just before) is the connector's; the scenarios and
 * their outcomes are the engine's, and the same for all.
 */

/** A record as the vendor's fake holds it: deleted (archived, or gone for a hard delete) or not, and its wire fields. */
export interface ConditionalPushRemoteRecord {
  readonly deleted: boolean;
  readonly fields: Readonly<Record<string, unknown>>;
}

/** A local edit, as the engine's record fields and as the fake holds them once pushed. */
export interface ConditionalPushEdit {
  readonly local: Readonly<Record<string, unknown>>;
  readonly remote: Readonly<Record<string, unknown>>;
}

/**
 * What the conditional-push suite needs of one vendor: its fake's MSW handlers and hooks on it,
 * the connection config and entity, the field a remote edit changes, and the write request to
 * hold in flight.
 */
export interface ConditionalPushFake {
  /** The vendor, as the suite's title names it ("HubSpot"). */
  readonly vendor: string;
  /** MSW handlers serving the fake; the suite serves them and fails unhandled requests. */
  readonly handlers: ReadonlyArray<HttpHandler>;
  /** A connection config pointing at the fake (the encoded form). */
  readonly config: unknown;
  /** The entity the suite pushes (one that declares conditional writes). */
  readonly entity: string;
  /** Empties the fake; called before every test. */
  readonly reset: () => void;
  /** Stops the fake's timers, after the suite. */
  readonly close?: () => void;
  /**
   * Moves the fake's clock a second on; called between every two changes, so each has a version
   * of its own (Salesforce's versions are whole seconds).
   */
  readonly tick: () => void;
  /** Adds `n` records; returns their ids. */
  readonly seed: (n: number) => ReadonlyArray<string>;
  /** The record in the fake; a missing record counts as deleted (a hard delete). */
  readonly remote: (id: string) => ConditionalPushRemoteRecord;
  /** A remote edit, as a user would make it in the vendor's UI: `edited.remote` written at the fake. */
  readonly editRemotely: (id: string) => void;
  /** What `editRemotely` changed: the field as the fake holds it and as the engine's record does. */
  readonly edited: ConditionalPushEdit;
  /** The write of one record to hold at the fake's door (see `requestGate`): method and path. */
  readonly writeRequest: { readonly method: string; readonly path: RegExp };
  /** Two local edits of one record, the second made while the first is in flight. */
  readonly inFlightEdits: { readonly first: Readonly<Record<string, unknown>>; readonly second: ConditionalPushEdit };
}

/** What a test the caller adds to the suite (`extraTests`) can use. */
export interface ConditionalPushSuite {
  /** Registers a test run on the suite's engine, on the real clock. */
  readonly test: (name: string, body: () => Effect.Effect<unknown, unknown, EngineServices>) => void;
  /** Resets the fake and connects it anew (`connector`, the suite's own by default), with an optional delete-against-edit rule. */
  readonly setup: (options?: {
    readonly deleteAgainstEdit?: "edit-wins" | "delete-wins";
    readonly connector?: string;
  }) => Effect.Effect<SyncTarget, unknown, EngineServices>;
  /** The conflict audit of one record. */
  readonly auditOf: (target: SyncTarget, externalId: string) => ReturnType<typeof conflictsOf>;
}

export interface ConditionalPushOptions {
  /** Further connectors the engine knows, for `extraTests` (variants of the connector under test). */
  readonly connectors?: ReadonlyArray<AnyConnector>;
  /** Tests of the caller's own, registered in the suite after its own. */
  readonly extraTests?: (suite: ConditionalPushSuite) => void;
}

/** Creating the suite's PostgreSQL database and its first connection may take a while on a loaded machine. */
const timeout = 180_000;

/**
 * Registers the conditional-push suite for `connector` over `fake`.
 *
 * @example
 * describeConditionalPush(erp, {
 *   vendor: "Business Central",
 *   handlers: businessCentralHandlers(fake),
 *   entity: "items",
 *   editRemotely: (id) => fake.store.update("items", id, { displayName: "Edited remotely" }),
 *   ...
 * });
 */
export const describeConditionalPush = (
  connector: AnyConnector,
  fake: ConditionalPushFake,
  options: ConditionalPushOptions = {},
): void => {
  describe(`pushes to ${fake.vendor} are conditional, deletes included`, () => {
    const server = setupServer(...fake.handlers);
    // Built on first use and shared by the suite's tests, as @effect/vitest's `layer` does.
    const runtime = ManagedRuntime.make(
      testEngineLayer({ dialect: "postgres", connectors: [connector, ...(options.connectors ?? [])] }),
    );
    beforeAll(() => server.listen({ onUnhandledFrame: "error" }));
    afterEach(() => server.resetHandlers());
    afterAll(async () => {
      fake.close?.();
      server.close();
      await runtime.dispose();
    }, timeout);

    const suite: ConditionalPushSuite = {
      test: (name, body) =>
        it(name, () => runtime.runPromise(body() as Effect.Effect<unknown, unknown, never>), timeout),
      setup: ({ deleteAgainstEdit, connector: name = connector.name } = {}) =>
        Effect.gen(function* () {
          fake.reset();
          const ids = yield* createTestConnection(name, fake.config);
          const target = { ...ids, entity: fake.entity } satisfies SyncTarget;
          if (deleteAgainstEdit !== undefined) {
            yield* setConnectionSettings(target.tenantId, target.connectionId, {
              [fake.entity]: { deleteAgainstEdit },
            });
          }
          return target;
        }),
      auditOf: conflictsOf,
    };
    const { test, setup, auditOf } = suite;
    const { tick, edited } = fake;

    /** A synced record deleted locally, then edited at the vendor, then pushed (twice: the second push finds nothing left to do). */
    const deleteAgainstRemoteEdit = (target: SyncTarget, ids: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const records = yield* Records;
        yield* engine.run({ ...target, mode: "full" });
        tick();
        for (const id of ids) yield* records.delete(target.tenantId, { ...target, externalId: id });
        tick();
        fake.editRemotely(ids[0]!);
        tick();
        yield* engine.run({ ...target, mode: "push" });
        yield* engine.run({ ...target, mode: "push" });
      });

    /** The one audit row a delete meeting the remote edit leaves, resolved by `rule`. */
    const resolvedAgainstRemoteEdit = (rule: "edit-wins" | "delete-wins") =>
      expect.objectContaining({
        status: "resolved",
        policy: `delete-against-edit:${rule}`,
        local: { deleted: true },
        remote: expect.objectContaining(edited.local),
      });

    test("a local delete meeting a remote edit since the last pull: edit wins (default), restored, audited", () =>
      Effect.gen(function* () {
        const target = yield* setup();
        // Two deletes, pushed together; only the edited one meets a remote edit.
        const [a, b] = fake.seed(2) as [string, string];
        yield* deleteAgainstRemoteEdit(target, [a, b]);
        expect(fake.remote(a)).toMatchObject({ deleted: false, fields: edited.remote });
        expect(fake.remote(b).deleted).toBe(true);
        expect(yield* storedRecord(target, a)).toMatchObject({
          deletedAt: null,
          syncStatus: "synced",
          data: edited.local,
        });
        expect((yield* storedRecord(target, b)).deletedAt).not.toBeNull();
        expect(yield* auditOf(target, a)).toEqual([resolvedAgainstRemoteEdit("edit-wins")]);
        expect(yield* auditOf(target, b)).toEqual([]);
      }));

    test("a local delete meeting a remote edit since the last pull: delete wins, deleted, the edit audited", () =>
      Effect.gen(function* () {
        const target = yield* setup({ deleteAgainstEdit: "delete-wins" });
        const [a] = fake.seed(1) as [string];
        yield* deleteAgainstRemoteEdit(target, [a]);
        expect(fake.remote(a).deleted).toBe(true);
        expect(yield* storedRecord(target, a)).toMatchObject({ syncStatus: "synced" });
        expect((yield* storedRecord(target, a)).deletedAt).not.toBeNull();
        expect(yield* auditOf(target, a)).toEqual([resolvedAgainstRemoteEdit("delete-wins")]);
      }));

    test("a local edit made while a push of the record is in flight is pushed next, not lost", () =>
      Effect.gen(function* () {
        const engine = yield* EntitySync;
        const records = yield* Records;
        const target = yield* setup();
        const [a] = fake.seed(1) as [string];
        const { first, second } = fake.inFlightEdits;
        yield* engine.run({ ...target, mode: "full" });
        tick();
        yield* records.update(target.tenantId, { ...target, externalId: a, fields: first });
        tick();
        // The write of the first edit (conditional on the version pulled) waits at the vendor's door.
        const gate = requestGate(fake.writeRequest.method, fake.writeRequest.path);
        server.use(gate.handler);
        const push = yield* Effect.fork(engine.run({ ...target, mode: "push" }));
        yield* Effect.promise(() => gate.arrived);
        yield* records.update(target.tenantId, { ...target, externalId: a, fields: second.local });
        tick();
        gate.release();
        yield* Fiber.join(push);
        tick();
        yield* engine.run({ ...target, mode: "push" });
        expect(fake.remote(a).fields).toMatchObject(second.remote);
        expect(yield* storedRecord(target, a)).toMatchObject({
          syncStatus: "synced",
          pendingChanges: null,
          data: second.local,
        });
        // Our own write was never taken for a remote edit.
        expect(yield* auditOf(target, a)).toEqual([]);
      }));

    options.extraTests?.(suite);
  });
};
