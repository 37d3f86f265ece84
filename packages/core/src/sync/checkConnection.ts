import { callConnector } from "@tandem/connector-sdk/runtime";
import { Effect } from "effect";
import { connectorContextFor, type ResolveEntityDeps } from "./ResolvedEntity.ts";
import type { ConnectionCheck } from "./SyncRun.ts";

/**
 * Tests a connection: calls its connector's `check` (credentials, reachability) through the
 * engine's HTTP client. A refusal is an answer (`ok: false` with the reason), not a failure.
 */
export const checkConnection = (
  deps: ResolveEntityDeps,
  target: { readonly tenantId: string; readonly connectionId: string },
) =>
  Effect.gen(function* () {
    const { connector, config } = yield* deps.connections.resolve(target.tenantId, target.connectionId);
    const connectorCheck = connector.check;
    if (connectorCheck === undefined) return { ok: true, checked: false } satisfies ConnectionCheck;
    return yield* Effect.scoped(
      Effect.gen(function* () {
        const ctx = yield* connectorContextFor(deps, target.connectionId, connector, config);
        return yield* callConnector(() => connectorCheck(ctx)).pipe(
          Effect.as({ ok: true, checked: true } satisfies ConnectionCheck),
          Effect.catchAll((e) =>
            Effect.succeed({
              ok: false,
              checked: true,
              error: { type: e._tag, message: e.message },
            } satisfies ConnectionCheck),
          ),
        );
      }),
    );
  });
