/**
 * Tandem's side of every scenario: the only functions the integrator fills in once the engine,
 * the job queue and the webhook route exist. Each receives what the baselines receive (the same
 * source, the same database) and returns the same kind of figures. A hook that throws
 * TandemNotIntegrated makes the results say `"tandem": null` with its message.
 *
 * The harness runs import, delta and reconcile hooks in a fresh child process, whose peak RSS
 * is the figure reported (do not start extra processes in them), and times each call there,
 * after the hook's modules are loaded: return records, not durations.
 *
 * Wiring (the modules beside this one): `TandemEngine.ts` composes the engine's services as the
 * server does (database, credential cipher, the HubSpot connector, rate budget, record store,
 * tenants, connections, EntitySync) and finds or creates the tenant + HubSpot connection named
 * `input.connectionName`, pointing at the source with `listPageSize` = the run's page size and
 * `requestsPerSecond` high enough never to pace it. `TandemSync.ts` runs `EntitySync.run` in
 * mode full, delta or reconcile. `TandemQueueSubject.ts` is the server's `JobQueue`;
 * `TandemWebhookReceiver.ts` starts the real server (`startServer`) and its webhook route.
 */
import type { DatabaseConfig } from "@tandem/core";
import type { QueueSubject } from "../queues/QueueSubject.ts";
import type { WebhookReceiver, WebhookReceiverInput } from "../webhooks/WebhookReceiver.ts";
import type { ReconcileListing } from "./TandemEngine.ts";
import { tandemJobQueueSubject } from "./TandemQueueSubject.ts";

/** Where Tandem syncs from and to in a sync scenario. */
export interface TandemSyncInput {
  /** A fresh PostgreSQL database, or a PGlite data directory (state persists between hooks). */
  readonly database: DatabaseConfig;
  /** Base URL of the HubSpot fake (`GET /crm/v3/objects/contacts`, `POST .../search`). */
  readonly sourceUrl: string;
  /** The bearer token the source accepts. */
  readonly accessToken: string;
  /** Page size to ask the source for (100 is HubSpot's maximum; the large-page variant asks for more). */
  readonly pageSize: number;
  /**
   * A stable name for the tenant/connection: the first hook on a database creates them, later
   * hooks on the same database (delta, reconcile, the full re-sync) find and reuse them.
   */
  readonly connectionName: string;
  /** reconcile: whether the listing's modification times reach the engine (default: they do). */
  readonly reconcileListing?: ReconcileListing;
}

export interface TandemSyncFigures {
  /** Records written (created or updated) by the run. */
  readonly records: number;
  /** How long `EntitySync.run` took (services and connection are set up before the clock starts). */
  readonly seconds: number;
}

/**
 * initial_import, and the full re-sync of the delta scenario: a full sync of the HubSpot
 * contacts entity into Tandem's record store (creating tenant and connection on first use).
 * Fill in: build the Database layer from `input.database`, ensure tenant + HubSpot connection
 * (baseUrl = sourceUrl, token = accessToken), run the full strategy, return records written.
 */
export const runTandemImport = async (input: TandemSyncInput): Promise<TandemSyncFigures> => {
  const sync = await import("./TandemSync.ts");
  return sync.runSync(input, "full", sync.recordsWritten);
};

/**
 * delta: the delta strategy for the same connection, after 1% of the contacts changed at the
 * source. Return the records it wrote (about the changed ones; unchanged ones must not be rewritten).
 */
export const runTandemDelta = async (input: TandemSyncInput): Promise<TandemSyncFigures> => {
  const sync = await import("./TandemSync.ts");
  return sync.runSync(input, "delta", sync.recordsWritten);
};

export interface TandemReconcileFigures {
  /** Every external id the run soft-deleted; the harness checks it equals the ids archived at the source. */
  readonly softDeletedExternalIds: ReadonlyArray<string>;
  /** Records the run found newer at the source than stored and re-fetched (0 for an ids-only listing). */
  readonly drifted: number;
  /** How long `EntitySync.run` took (services and connection are set up before the clock starts). */
  readonly seconds: number;
}

/**
 * reconcile: the reconciliation strategy for the same connection, after 1% were archived and
 * 0.1% changed (unseen by any delta) at the source; `input.reconcileListing` says whether the
 * listing's modification times are compared.
 */
export const runTandemReconcile = async (input: TandemSyncInput): Promise<TandemReconcileFigures> => {
  const sync = await import("./TandemSync.ts");
  return sync.runSync(input, "reconcile", (result, target) => sync.reconcileOutcome(result, target.connectionId));
};

/**
 * queue: Tandem's durable job queue as a QueueSubject (see queues/QueueSubject.ts and the
 * graphile-worker and pg-boss subjects beside it): migrate, bulk-enqueue no-op jobs, run
 * `workers` concurrent handlers claiming `prefetch` jobs ahead, enqueue single jobs. Runs in its
 * own child process.
 */
export const tandemQueueSubject = (databaseUrl: string, options: { readonly prefetch: number }): QueueSubject =>
  tandemJobQueueSubject(databaseUrl, options);

/**
 * webhook_ingest: Tandem's inbound webhook route listening on loopback (`POST
 * /webhooks/hubspot/:connectionId`, a connection whose app secret is `input.appSecret`), in
 * this child process. `receiptToStoredMs` reads, per event, stored time minus receipt time
 * from `webhook_events` (or the engine's own timestamps).
 */
export const startTandemWebhookReceiver = async (input: WebhookReceiverInput): Promise<WebhookReceiver> =>
  (await import("./TandemWebhookReceiver.ts")).startTandemServerReceiver(input);
