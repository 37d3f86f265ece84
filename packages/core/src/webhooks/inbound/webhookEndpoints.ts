import { Clock, type Context, Effect, Exit } from "effect";
import { ResourceNotFound } from "../../errors/Errors.ts";
import type { Connections } from "../../tenancy/Connections.ts";

/** How long a resolved connection serves webhook verification before it is read again. */
const CONFIG_CACHE_MS = 5_000;

type Resolved = Effect.Effect.Success<ReturnType<Context.Tag.Service<Connections>["resolveById"]>>;

/** A connection that receives webhooks: its decoded config and its connector's webhook hooks. */
export type WebhookEndpoint = Resolved & { readonly webhooks: NonNullable<Resolved["connector"]["webhooks"]> };

/** Webhook endpoints by connection, cached (see `makeWebhookEndpoints`). */
export interface WebhookEndpoints {
  /** The endpoint of `connector/connectionId`; ResourceNotFound when there is none. */
  readonly resolve: (connector: string, connectionId: string) => Effect.Effect<WebhookEndpoint, ResourceNotFound>;
  /** Drops a connection from the cache (it was deleted after it was cached). */
  readonly forget: (connectionId: string) => Effect.Effect<void>;
}

/**
 * Vendors post in bursts to one endpoint: the decrypted, decoded connection is kept for a
 * few seconds instead of being read and decrypted per request. A config change (a new
 * webhook secret) therefore reaches verification within CONFIG_CACHE_MS. One read per
 * connection at a time: requests arriving while it runs wait for it. When every request
 * read for itself, each expiry under load started dozens of reads at once; the pool opened
 * new connections for them, and the deliveries' commit waited 100 to 200 ms behind the
 * burst (bench/README.md, "What was profiled").
 */
export const makeWebhookEndpoints = (connections: Context.Tag.Service<Connections>): WebhookEndpoints => {
  const cache = new Map<string, { readonly at: number; readonly lookup: Effect.Effect<Resolved, ResourceNotFound> }>();
  const resolveCached = (connectionId: string) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis;
      const hit = cache.get(connectionId);
      if (hit !== undefined && now - hit.at < CONFIG_CACHE_MS) return yield* hit.lookup;
      const lookup = yield* Effect.cached(connections.resolveById(connectionId));
      if (cache.size > 10_000) cache.clear();
      cache.set(connectionId, { at: now, lookup });
      // Only a found connection is kept: a missing one (or a failed read) is read again next time.
      return yield* lookup.pipe(
        Effect.onExit((exit) =>
          Exit.isSuccess(exit)
            ? Effect.void
            : Effect.sync(() => {
                if (cache.get(connectionId)?.lookup === lookup) cache.delete(connectionId);
              }),
        ),
      );
    });

  return {
    resolve: (connector, connectionId) =>
      Effect.gen(function* () {
        const resolved = yield* resolveCached(connectionId);
        // The connector in the URL must match: a mismatch is indistinguishable from a missing connection.
        if (resolved.connector.name !== connector || resolved.connector.webhooks === undefined) {
          return yield* new ResourceNotFound({ resource: "webhook endpoint", id: `${connector}/${connectionId}` });
        }
        return { ...resolved, webhooks: resolved.connector.webhooks };
      }),
    forget: (connectionId) => Effect.sync(() => cache.delete(connectionId)),
  };
};
