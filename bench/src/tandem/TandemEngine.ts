/**
 * The engine as the hooks use it: the same services as the server's composition (database,
 * credential cipher, connector registry with the HubSpot connector, rate budget, record store,
 * tenants, connections, sync engine), and the tenant + HubSpot connection a scenario syncs.
 */
import { createHash } from "node:crypto";
import hubspot from "@tandem/connector-hubspot";
import {
  Conflicts,
  Connections,
  ConnectorCredentials,
  ConnectorRegistry,
  CredentialCipher,
  Database,
  type DatabaseConfig,
  EntitySync,
  JobQueue,
  OutboundWebhooks,
  RateBudget,
  RecordStore,
  RetryPolicy,
  Tenants,
} from "@tandem/core";
import { loopbackEgressPolicy } from "@tandem/testkit";
import { Effect, Layer, Redacted } from "effect";

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

export const tandemEngineLayer = (database: DatabaseConfig) => {
  const infra = Layer.mergeAll(
    Database.layer(database),
    CredentialCipher.layer(Redacted.make(benchSecretKey)),
    ConnectorRegistry.layer([hubspot]),
    RateBudget.layer,
    RetryPolicy.layer,
    // The bench's source serves HubSpot on loopback, which the egress policy refuses by default.
    loopbackEgressPolicy,
  );
  const services = Layer.mergeAll(RecordStore.layer, Tenants.layer, Connections.layer, ConnectorCredentials.layer).pipe(
    Layer.provideMerge(infra),
  );
  const conflicts = Conflicts.layerNoDeps.pipe(
    Layer.provideMerge(OutboundWebhooks.layerNoDeps),
    Layer.provideMerge(JobQueue.layerNoDeps),
    Layer.provideMerge(services),
  );
  return EntitySync.layerNoDeps.pipe(Layer.provideMerge(conflicts));
};

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
