import { expect, layer } from "@effect/vitest";
import {
  type AnyConnector,
  Connections,
  createConnection,
  deletionsArriveOnTheirOwn,
  reconcileCadenceOf,
  Scheduler,
  SyncTriggers,
  Tenants,
} from "@tandem/core";
import { acmeConnector, dialects, testEngineLayer } from "@tandem/testkit";
import { Effect } from "effect";
import { describe, it } from "vitest";

/*
 * The sync schedules a connection gets: a delta every 15 minutes, and a reconciliation whose
 * cadence follows each entity's `deletes` and `webhooks` flags (daily when only reconciliation
 * learns deletions, a weekly safety net when they arrive by delta or webhook, none without
 * `readIds`), unless the connection sets its own.
 */

const contacts = acmeConnector.entities.contacts;

/** One connector whose entities differ only in their flags. */
const flagged = {
  ...acmeConnector,
  name: "acme-flagged",
  entities: {
    // How the Acme connector declares contacts: webhooks, but deletions only by reconciliation.
    reconcile_deletes: { ...contacts, deletes: "reconcile", webhooks: true },
    api_deletes: { ...contacts, deletes: "api", webhooks: false },
    webhook_deletes: { ...contacts, deletes: "webhook", webhooks: true },
    // Declares webhook deletions, but the vendor sends no webhooks for it: nothing arrives.
    webhook_deletes_without_webhooks: { ...contacts, deletes: "webhook", webhooks: false },
    unflagged: { ...contacts, deletes: undefined, webhooks: undefined },
    without_read_ids: { ...contacts, deletes: "api", readIds: undefined },
  },
} as unknown as AnyConnector;

const DELTA = "*/15 * * * *";
const DAILY = "0 3 * * *";
const WEEKLY = "0 3 * * 0";

/** A new connection of `acme-flagged`, created the way the API creates one (with its schedules). */
const newConnection = Effect.gen(function* () {
  const tenant = yield* (yield* Tenants).create({ name: `tenant-${crypto.randomUUID().slice(0, 6)}` });
  const connection = yield* createConnection(tenant.id, {
    connector: "acme-flagged",
    name: `flags-${crypto.randomUUID().slice(0, 6)}`,
    config: { baseUrl: "https://acme.schedules.test", token: "t" },
  });
  return { tenantId: tenant.id, connectionId: connection.id };
});

/** The connection's schedules as `<entity>:<mode>` -> cron. */
const schedulesOf = (connectionId: string) =>
  Effect.flatMap(Scheduler, (s) => s.list({ connectionId })).pipe(
    Effect.map((views) =>
      Object.fromEntries(
        views.map((v) => {
          const payload = v.payload as { entity: string; mode: string };
          return [`${payload.entity}:${payload.mode}`, v.cron];
        }),
      ),
    ),
  );

const defaults = {
  "reconcile_deletes:delta": DELTA,
  "reconcile_deletes:reconcile": DAILY,
  "api_deletes:delta": DELTA,
  "api_deletes:reconcile": WEEKLY,
  "webhook_deletes:delta": DELTA,
  "webhook_deletes:reconcile": WEEKLY,
  "webhook_deletes_without_webhooks:delta": DELTA,
  "webhook_deletes_without_webhooks:reconcile": DAILY,
  "unflagged:delta": DELTA,
  "unflagged:reconcile": DAILY,
  "without_read_ids:delta": DELTA,
};

for (const dialect of dialects) {
  layer(testEngineLayer({ dialect, connectors: [flagged] }), { timeout: 60_000 })(
    `sync schedules from the entity flags on ${dialect}`,
    (it) => {
      it.effect("the reconciliation cadence follows deletes and webhooks; delta every 15 minutes", () =>
        Effect.gen(function* () {
          const { connectionId } = yield* newConnection;
          expect(yield* schedulesOf(connectionId)).toEqual(defaults);
        }),
      );

      it.effect(
        "a connection's own crons replace the defaults, null removes a schedule; bad ones are field errors",
        () =>
          Effect.gen(function* () {
            const triggers = yield* SyncTriggers;
            const { tenantId, connectionId } = yield* newConnection;
            const views = yield* triggers.setupSchedules(tenantId, connectionId, {
              // Deletions arrive by API, but this connection wants a reconciliation every 6 hours.
              api_deletes: { reconcileCron: "0 */6 * * *" },
              // Reconciled on demand only; deltas every 5 minutes.
              reconcile_deletes: { reconcileCron: null, deltaCron: "*/5 * * * *" },
            });
            expect(views.length).toBe(Object.keys(defaults).length - 1);
            expect(yield* schedulesOf(connectionId)).toEqual({
              ...Object.fromEntries(Object.entries(defaults).filter(([key]) => key !== "reconcile_deletes:reconcile")),
              "api_deletes:reconcile": "0 */6 * * *",
              "reconcile_deletes:delta": "*/5 * * * *",
            });
            // Setting them up again with no overrides restores the defaults.
            yield* triggers.setupSchedules(tenantId, connectionId);
            expect(yield* schedulesOf(connectionId)).toEqual(defaults);

            const unknown = yield* Effect.flip(
              triggers.setupSchedules(tenantId, connectionId, { invoices: { reconcileCron: DAILY } }),
            );
            expect(unknown).toMatchObject({
              _tag: "InvalidInput",
              issues: [{ path: "schedules.invoices", message: 'connector acme-flagged has no entity "invoices"' }],
            });
            const badCron = yield* Effect.flip(
              triggers.setupSchedules(tenantId, connectionId, { api_deletes: { reconcileCron: "every day" } }),
            );
            expect(badCron._tag).toBe("InvalidInput");
            if (badCron._tag === "InvalidInput") expect(badCron.issues[0]!.path).toBe("schedules.api_deletes.cron");
            // Another tenant's connection is not found.
            const other = yield* (yield* Tenants).create({ name: "other" });
            const foreign = yield* Effect.flip(triggers.setupSchedules(other.id, connectionId));
            expect(foreign._tag).toBe("ResourceNotFound");
            expect((yield* (yield* Connections).list(other.id)).length).toBe(0);
          }),
      );
    },
  );
}

layer(
  testEngineLayer({
    dialect: "pglite",
    connectors: [flagged],
    config: { schedules: { reconcileCron: "15 1 * * *", safetyNetReconcileCron: "45 2 1 * *" } },
  }),
  { timeout: 60_000 },
)("sync schedules with configured defaults", (it) => {
  it.effect("the engine's configured daily and safety-net crons are what the flags pick from", () =>
    Effect.gen(function* () {
      const { connectionId } = yield* newConnection;
      const schedules = yield* schedulesOf(connectionId);
      expect(schedules["reconcile_deletes:reconcile"]).toBe("15 1 * * *");
      expect(schedules["api_deletes:reconcile"]).toBe("45 2 1 * *");
      expect(schedules["webhook_deletes:reconcile"]).toBe("45 2 1 * *");
    }),
  );
});

describe("reconcileCadenceOf", () => {
  it("reads the flags: api or webhook deletions with webhooks arrive on their own", () => {
    expect(reconcileCadenceOf({ ...contacts, deletes: "api" })).toBe("safety-net");
    expect(reconcileCadenceOf({ ...contacts, deletes: "webhook", webhooks: true })).toBe("safety-net");
    expect(reconcileCadenceOf({ ...contacts, deletes: "webhook", webhooks: false })).toBe("daily");
    expect(reconcileCadenceOf({ ...contacts, deletes: "reconcile", webhooks: true })).toBe("daily");
    expect(reconcileCadenceOf({ ...contacts, deletes: undefined, webhooks: undefined })).toBe("daily");
    expect(reconcileCadenceOf({ ...contacts, deletes: "api", readIds: undefined })).toBe("none");
    expect(deletionsArriveOnTheirOwn({ deletes: "webhook" })).toBe(false);
  });
});
