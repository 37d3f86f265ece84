import { createHash } from "node:crypto";
import type { AnyConnector, AuthExpired, ConnectorContext } from "@tandem/connector-sdk";
import {
  connectorLogger,
  EgressPolicy,
  makeConnectorContext,
  makeConnectorHttp,
  makeTokenSource,
  type RefreshStateStore,
  requestGrant,
  type TokenBucket,
  type TokenSource,
} from "@tandem/connector-sdk/runtime";
import { Context, Effect, Layer, Redacted, Schema } from "effect";
import { Database } from "../db/Database.ts";
import { refreshStateAad, selectRefreshState, updateRefreshState } from "../tenancy/Connections.ts";
import { CredentialCipher } from "../tenancy/CredentialCipher.ts";

/**
 * The access grants of connections whose connector has an `auth` hook: one token source per
 * connection in this process, shared by all its jobs, so concurrent jobs refresh once. A rotated
 * refresh state is stored encrypted in the connection's row, so the next process (or the next
 * refresh here) uses it; it is never logged nor shown by the API.
 */
export class ConnectorCredentials extends Context.Tag("@tandem/core/ConnectorCredentials")<
  ConnectorCredentials,
  {
    /** The connection's token source; undefined when its connector has no `auth` hook. */
    readonly tokensFor: (
      connectionId: string,
      connector: AnyConnector,
      config: unknown,
    ) => Effect.Effect<TokenSource | undefined>;
    /**
     * The job queue's credential refresh (before a job that failed with `AuthExpired` runs once
     * more): marks the connection's grant stale, or fails with the vendor's refusal when the last
     * refresh was refused, so the job is dead-lettered without asking the vendor again.
     */
    readonly forget: (connectionId: string) => Effect.Effect<void, AuthExpired>;
    /** A connector context over the connection, its requests authenticated with the connection's grant. */
    readonly contextFor: (
      connectionId: string,
      connector: AnyConnector,
      config: unknown,
      bucket: TokenBucket,
      signal: AbortSignal,
    ) => Effect.Effect<ConnectorContext<any>>;
  }
>() {
  static readonly layerNoDeps = Layer.effect(
    ConnectorCredentials,
    Effect.gen(function* () {
      const db = yield* Database;
      const cipher = yield* CredentialCipher;
      const runtime = yield* Effect.runtime<never>();
      // No job's signal nor rate budget: a refresh is shared by the connection's jobs, and the
      // token endpoint is not the API whose limits the budget follows.
      const http = makeConnectorHttp({ egress: yield* EgressPolicy });
      const sources = new Map<string, { readonly fingerprint: string; readonly source: TokenSource }>();

      const tokensFor = (connectionId: string, connector: AnyConnector, config: unknown) =>
        Effect.suspend(() => {
          if (connector.auth === undefined) return Effect.succeed(undefined);
          // A changed config (renewed credentials) gets a new source: the cached grant was the old one's.
          const fingerprint = configFingerprint(connector, config);
          const known = sources.get(connectionId);
          if (known?.fingerprint === fingerprint) return Effect.succeed(known.source);
          return Effect.map(
            makeTokenSource(
              requestGrant(connector, config, {
                http,
                log: connectorLogger(connector, runtime),
                refreshState: storedRefreshState(db, cipher, connectionId),
              }),
            ),
            (source) => {
              // Two jobs may build one at once: the first stored wins, so both share it.
              const current = sources.get(connectionId);
              if (current?.fingerprint === fingerprint) return current.source;
              sources.set(connectionId, { fingerprint, source });
              return source;
            },
          );
        });

      return {
        tokensFor,
        forget: (connectionId) => sources.get(connectionId)?.source.forget ?? Effect.void,
        contextFor: (connectionId, connector, config, bucket, signal) =>
          Effect.flatMap(tokensFor(connectionId, connector, config), (tokens) =>
            makeConnectorContext(connector, config, bucket, signal, tokens),
          ),
      };
    }),
  );

  static readonly layer = ConnectorCredentials.layerNoDeps;
}

/** Identifies the credentials a grant came from, without keeping them (a digest of the encoded config). */
const configFingerprint = (connector: AnyConnector, config: unknown) =>
  createHash("sha256")
    .update(connector.name)
    .update(JSON.stringify(Schema.encodeSync(connector.config)(config)))
    .digest("hex");

/** A connection's refresh state in its row, encrypted and bound to the row. */
const storedRefreshState = (
  db: Context.Tag.Service<Database>,
  cipher: Context.Tag.Service<CredentialCipher>,
  connectionId: string,
): RefreshStateStore => ({
  load: Effect.gen(function* () {
    const row = yield* db.query((k) => selectRefreshState(k, connectionId)).pipe(Effect.orDie);
    if (row?.refresh_state_ciphertext == null) return undefined;
    const plain = yield* cipher.decrypt(row.refresh_state_ciphertext, refreshStateAad(row)).pipe(Effect.orDie);
    return Redacted.make(plain);
  }),
  save: (state) =>
    Effect.gen(function* () {
      const row = yield* db.query((k) => selectRefreshState(k, connectionId)).pipe(Effect.orDie);
      if (row === undefined) return;
      const envelope = cipher.encrypt(Redacted.value(state), refreshStateAad(row));
      yield* db.query((k) => updateRefreshState(k, connectionId, envelope)).pipe(Effect.orDie);
    }),
});
