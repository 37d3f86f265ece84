/**
 * The engine as the hooks use it: the server's composition (core's Engine.layer) with the HubSpot
 * connector, and the tenant + HubSpot connection a scenario syncs.
 */
import { createHash } from "node:crypto";
import hubspot from "@tandem/connector-hubspot";
import { Connections, type DatabaseConfig, Engine, type ListedId, Tenants } from "@tandem/core";
import { loopbackEgressOptions } from "@tandem/testkit";
import { Effect, Redacted } from "effect";

/**
 * Import, delta and reconcile run in separate processes on one database and must decrypt the
 * connection the first of them stored, so the key is fixed. It protects only a bench token.
 */
const benchSecretKey = createHash("sha256").update("tandem bench connection key").digest();

/**
 * A request budget the source never reaches: the benchmark measures Tandem, not HubSpot's
 * politeness (9 requests/s by default), which the source does not need.
 */
export const benchRequestsPerSecond = 1_000_000;

/**
 * How the contacts' reconciliation listing is read: `ids-and-times`, the connector as it is
 * (each id with `lastmodifieddate`, so reconciliation re-fetches what is newer remotely), or
 * `ids`, the same listing with the times dropped before the engine sees them (the ids-only
 * comparison an entity without times gets). Same requests to the source either way.
 */
export type ReconcileListing = "ids" | "ids-and-times";

type Contacts = typeof hubspot.entities.contacts;

/** The HubSpot connector with its contacts entity changed by `change` (the bench's variants). */
const withContacts = (change: Partial<Contacts>) => ({
  ...hubspot,
  entities: { ...hubspot.entities, contacts: { ...hubspot.entities.contacts, ...change } },
});

/** The HubSpot connector whose contacts list bare ids for reconciliation (see ReconcileListing). */
const hubspotListingIdsOnly = withContacts({
  readIds: async function* (ctx: Parameters<NonNullable<Contacts["readIds"]>>[0]) {
    for await (const page of hubspot.entities.contacts.readIds!(ctx) as AsyncIterable<
      ReadonlyArray<string | ListedId>
    >) {
      yield page.map((entry) => (typeof entry === "string" ? entry : entry.id));
    }
  },
});

/**
 * The HubSpot connector whose contacts offer no batch writes: the engine writes each record alone
 * (the push's per-record reference; HubSpot's conditional single update reads, then writes it).
 */
const hubspotWithoutBatchWrites = withContacts({
  write: { ...hubspot.entities.contacts.write!, batch: undefined },
});

/** Which HubSpot connector the engine has: as it is, or a variant (see ReconcileListing, hubspotWithoutBatchWrites). */
export type BenchConnector = ReconcileListing | "no-batch-writes";

const connectorFor = (variant: BenchConnector) =>
  variant === "ids" ? hubspotListingIdsOnly : variant === "no-batch-writes" ? hubspotWithoutBatchWrites : hubspot;

export const tandemEngineLayer = (database: DatabaseConfig, variant: BenchConnector = "ids-and-times") =>
  Engine.layer({
    database,
    secretKey: Redacted.make(benchSecretKey),
    connectors: [connectorFor(variant)],
    // The bench's source serves HubSpot on loopback, which the egress policy refuses by default.
    egress: loopbackEgressOptions,
  });

/** The HubSpot connection config pointing at the bench's source. */
export const benchHubSpotConfig = (input: {
  readonly sourceUrl: string;
  readonly accessToken: string;
  readonly pageSize?: number;
  readonly appSecret?: string;
}) => ({
  baseUrl: input.sourceUrl,
  accessToken: input.accessToken,
  requestsPerSecond: benchRequestsPerSecond,
  ...(input.pageSize !== undefined ? { listPageSize: input.pageSize } : {}),
  ...(input.appSecret !== undefined ? { webhooks: { clientSecret: input.appSecret } } : {}),
});

/**
 * The tenant and HubSpot connection named `name`: created by the first hook on a database,
 * found by later ones (their config is updated, e.g. to the page size of this run).
 */
export const ensureConnection = (name: string, config: ReturnType<typeof benchHubSpotConfig>) =>
  Effect.gen(function* () {
    const tenants = yield* Tenants;
    const connections = yield* Connections;
    const tenant = (yield* tenants.list()).find((t) => t.name === name) ?? (yield* tenants.create({ name }));
    const existing = (yield* connections.list(tenant.id)).find((c) => c.name === name);
    const connection =
      existing === undefined
        ? yield* connections.create(tenant.id, { connector: "hubspot", name, config })
        : yield* connections.update(tenant.id, existing.id, { config });
    return { tenantId: tenant.id, connectionId: connection.id };
  });
