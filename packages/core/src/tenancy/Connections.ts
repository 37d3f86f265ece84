import { randomUUID } from "node:crypto";
import type { AnyConnector } from "@tandem/connector-sdk";
import { EgressPolicy } from "@tandem/connector-sdk/runtime";
import { Context, Effect, Layer, Redacted, Schema } from "effect";
import type { Kysely } from "kysely";
import { ConnectorRegistry } from "../connector/ConnectorRegistry.ts";
import { deleteRateBudgetOf } from "../connector/RateBudgetRows.ts";
import { Database } from "../db/Database.ts";
import type { ConnectionRow, DB } from "../db/schema.ts";
import { AlreadyExists, type FieldIssue, InvalidInput, ResourceNotFound } from "../errors/Errors.ts";
import { invalidInput } from "../errors/schemaIssues.ts";
import { SchedulerConfig } from "../queue/Scheduler.ts";
import { type SyncScheduleDefaults, syncScheduleDefaults } from "../queue/schedules/syncSchedules.ts";
import { deleteRecordsOfConnection } from "../store/RecordRows.ts";
import { CredentialCipher } from "./CredentialCipher.ts";
import {
  type ConflictPolicySetting,
  type EntitySettings,
  effectiveEntitySettings,
  type StoredConflictPolicy,
  type StoredEntitySettings,
  type StoredSyncSettings,
  type SyncSettings,
  SyncSettingsInput,
  settingsIssues,
  settingsView,
} from "./syncSettings.ts";

/** What the API shows of a connection. Secret config fields read "[redacted]". */
export interface ConnectionView {
  readonly id: string;
  readonly connector: string;
  readonly name: string;
  readonly status: "active" | "error" | "disabled";
  readonly paused: boolean;
  readonly config: Record<string, unknown>;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface CreateConnection {
  readonly connector: string;
  readonly name: string;
  readonly config: unknown;
}

export interface UpdateConnection {
  readonly name?: string | undefined;
  /** Merged over the stored config, so a secret need not be re-sent to change a URL. */
  readonly config?: Record<string, unknown> | undefined;
  readonly paused?: boolean | undefined;
}

export const REDACTED = "[redacted]";

/** Replaces every Redacted value of a decoded config with a placeholder, at any depth. */
const redact = (value: unknown): unknown => {
  if (Redacted.isRedacted(value)) return REDACTED;
  if (Array.isArray(value)) return value.map(redact);
  if (typeof value === "object" && value !== null && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v)]));
  }
  return value;
};

const aad = (row: { readonly id: string; readonly tenant_id: string }) => `connection:${row.tenant_id}:${row.id}`;

/** The associated data of a connection's refresh state envelope: valid on this row only, and never as its config. */
export const refreshStateAad = (row: { readonly id: string; readonly tenant_id: string }) =>
  `connection-refresh-state:${row.tenant_id}:${row.id}`;

/** A connection's stored refresh state envelope (null until its connector rotated one); undefined when it is gone. */
export const selectRefreshState = (k: Kysely<DB>, id: string) =>
  k
    .selectFrom("connections")
    .select(["id", "tenant_id", "refresh_state_ciphertext"])
    .where("id", "=", id)
    .executeTakeFirst();

/** The associated data of an entity's LLM resolver key: valid on this connection and entity only. */
const llmKeyAad = (row: { readonly id: string; readonly tenant_id: string }, entity: string) =>
  `connection-llm-key:${row.tenant_id}:${row.id}:${entity}`;

/** A connection's sync settings with their defaults, as the API shows them (keys redacted). */
export interface ConnectionSettingsView {
  readonly connectionId: string;
  readonly entities: Readonly<Record<string, ReturnType<typeof settingsView>>>;
}

/** Stores a connection's rotated refresh state envelope (see ConnectorCredentials). */
export const updateRefreshState = (k: Kysely<DB>, id: string, ciphertext: string) =>
  k.updateTable("connections").set({ refresh_state_ciphertext: ciphertext }).where("id", "=", id).execute();

/** A connection as the engine reads it: connector, decoded config and sync settings (secrets Redacted). */
export interface ResolvedConnection {
  readonly connector: AnyConnector;
  readonly config: unknown;
  readonly row: ConnectionRow;
  readonly settings: SyncSettings;
  /** The running engine's default crons, which the settings' schedules fall back to. */
  readonly scheduleDefaults: SyncScheduleDefaults;
}

/**
 * Connections of a tenant to external systems. Config is validated against the
 * connector's schema and stored encrypted (AES-256-GCM, bound to the row).
 */
export class Connections extends Context.Tag("@tandem/core/Connections")<
  Connections,
  {
    readonly create: (
      tenantId: string,
      input: CreateConnection,
    ) => Effect.Effect<ConnectionView, InvalidInput | AlreadyExists>;
    readonly list: (tenantId: string) => Effect.Effect<ReadonlyArray<ConnectionView>>;
    readonly get: (tenantId: string, id: string) => Effect.Effect<ConnectionView, ResourceNotFound>;
    readonly update: (
      tenantId: string,
      id: string,
      input: UpdateConnection,
    ) => Effect.Effect<ConnectionView, ResourceNotFound | InvalidInput | AlreadyExists>;
    readonly delete: (tenantId: string, id: string) => Effect.Effect<{ readonly id: string }, ResourceNotFound>;
    /** Every entity's effective sync settings: the connection's own, else the connector's defaults. */
    readonly getSettings: (tenantId: string, id: string) => Effect.Effect<ConnectionSettingsView, ResourceNotFound>;
    /**
     * Replaces the sync settings of the named entities (null: back to the defaults), validated
     * against the connector's entities; an LLM key is stored encrypted, and an LLM policy given
     * without one keeps the key stored for it. Answers the effective settings.
     */
    readonly setSettings: (
      tenantId: string,
      id: string,
      input: unknown,
    ) => Effect.Effect<ConnectionSettingsView, ResourceNotFound | InvalidInput>;
    /** Fails with ResourceNotFound unless the connection is the tenant's (no decryption: a cheap guard). */
    readonly assertOwned: (tenantId: string, id: string) => Effect.Effect<void, ResourceNotFound>;
    /**
     * Like `resolve`, without a tenant: for inbound webhooks, whose URL names the
     * connection and whose signature (checked with this config) authenticates them.
     */
    readonly resolveById: (id: string) => Effect.Effect<ResolvedConnection, ResourceNotFound>;
    /** The decoded config (secrets as Redacted) and connector, for the engine. Never for API output. */
    readonly resolve: (tenantId: string, id: string) => Effect.Effect<ResolvedConnection, ResourceNotFound>;
  }
>() {
  static readonly layer = Layer.effect(
    Connections,
    Effect.gen(function* () {
      const db = yield* Database;
      const cipher = yield* CredentialCipher;
      const registry = yield* ConnectorRegistry;
      const egress = yield* EgressPolicy;
      // The crons the Scheduler uses where a connection sets none: the settings show these.
      const scheduleDefaults = syncScheduleDefaults(yield* SchedulerConfig);

      const connectorNamed = (name: string) => {
        const connector = registry.get(name);
        return connector === undefined
          ? Effect.fail(
              new InvalidInput({
                issues: [
                  {
                    path: "connector",
                    message: `unknown connector "${name}"; available: ${registry.all.map((c) => c.name).join(", ")}`,
                  },
                ],
              }),
            )
          : Effect.succeed(connector);
      };

      /**
       * Validates config and returns its encoded (plain JSON) form for storage. Every URL in it
       * must pass the egress policy: connectors are plugins, so rather than trust each one to mark
       * the fields it fetches, any http(s) URL value counts (baseUrl, instanceUrl, loginUrl...).
       */
      const validate = (connector: AnyConnector, config: unknown) =>
        Schema.decodeUnknown(connector.config)(config, { errors: "all", onExcessProperty: "error" }).pipe(
          Effect.flatMap((decoded) => Schema.encode(connector.config)(decoded)),
          Effect.mapError((e) => invalidInput(e, ["config"])),
          Effect.flatMap((encoded) => {
            const issues = refusedUrls(encoded, ["config"]);
            return issues.length === 0 ? Effect.succeed(encoded) : Effect.fail(new InvalidInput({ issues }));
          }),
        );

      const refusedUrls = (value: unknown, path: ReadonlyArray<string>): Array<FieldIssue> => {
        if (typeof value === "string") {
          const refusal = /^https?:\/\//i.test(value) ? egress.refusal(value) : undefined;
          return refusal === undefined ? [] : [{ path: path.join("."), message: refusal }];
        }
        if (typeof value !== "object" || value === null) return [];
        return Object.entries(value).flatMap(([key, v]) => refusedUrls(v, [...path, key]));
      };

      const decrypt = (row: ConnectionRow) =>
        cipher.decrypt(row.config_ciphertext, aad(row)).pipe(
          Effect.map((plain) => JSON.parse(plain) as unknown),
          Effect.orDie,
        );

      const decodeStored = (connector: AnyConnector | undefined, encoded: unknown) =>
        connector === undefined
          ? Effect.succeed(undefined)
          : Schema.decodeUnknown(connector.config)(encoded).pipe(Effect.orElseSucceed(() => undefined));

      const view = (row: ConnectionRow) =>
        Effect.gen(function* () {
          const connector = registry.get(row.connector);
          const decoded = yield* decodeStored(connector, yield* decrypt(row));
          return {
            id: row.id,
            connector: row.connector,
            name: row.name,
            status: row.status,
            paused: row.paused,
            // A config that no longer decodes (connector upgraded) is hidden whole rather than risk a leak.
            config: decoded === undefined ? {} : (redact(decoded) as Record<string, unknown>),
            createdAt: row.created_at.toISOString(),
            updatedAt: row.updated_at.toISOString(),
          } satisfies ConnectionView;
        });

      const duplicateName = (name: string) => (e: { readonly kind: string }) =>
        e.kind === "unique"
          ? new AlreadyExists({ resource: "connection", detail: `name "${name}" is taken` })
          : Effect.die(e);

      const find = (tenantId: string, id: string) =>
        db
          .query((k) =>
            k
              .selectFrom("connections")
              .selectAll()
              .where("tenant_id", "=", tenantId)
              .where("id", "=", id)
              .executeTakeFirst(),
          )
          .pipe(
            Effect.orDie,
            Effect.flatMap((row) =>
              row === undefined
                ? Effect.fail(new ResourceNotFound({ resource: "connection", id }))
                : Effect.succeed(row),
            ),
          );

      /** The stored settings with each LLM key decrypted (as Redacted). */
      const decryptSettings = (row: ConnectionRow) =>
        Effect.gen(function* () {
          const stored = (row.sync_settings ?? {}) as StoredSyncSettings;
          const out: Record<string, EntitySettings> = {};
          for (const [entity, own] of Object.entries(stored)) {
            const policy = own.conflictPolicy;
            if (policy?.kind !== "llm") {
              out[entity] = own as EntitySettings;
              continue;
            }
            const { apiKeyCiphertext, ...rest } = policy;
            const apiKey =
              apiKeyCiphertext === undefined
                ? undefined
                : Redacted.make(yield* cipher.decrypt(apiKeyCiphertext, llmKeyAad(row, entity)).pipe(Effect.orDie));
            out[entity] = { ...own, conflictPolicy: { ...rest, apiKey } satisfies ConflictPolicySetting };
          }
          return out as SyncSettings;
        });

      /** The row with its connector, decoded config and settings (secrets as Redacted). */
      const withConfig = (row: ConnectionRow) =>
        Effect.gen(function* () {
          const connector = registry.get(row.connector);
          if (connector === undefined)
            return yield* Effect.die(new Error(`connector "${row.connector}" is not loaded`));
          const config: unknown = yield* Schema.decodeUnknown(connector.config)(yield* decrypt(row)).pipe(Effect.orDie);
          const settings = yield* decryptSettings(row);
          return { connector, config, row, settings, scheduleDefaults } satisfies ResolvedConnection;
        });

      const settingsOf = (row: ConnectionRow) =>
        Effect.gen(function* () {
          const resolved = yield* withConfig(row);
          const entities = Object.fromEntries(
            Object.keys(resolved.connector.entities).map((entity) => [
              entity,
              settingsView(effectiveEntitySettings(resolved, entity)!, REDACTED),
            ]),
          );
          return { connectionId: row.id, entities } satisfies ConnectionSettingsView;
        });

      return {
        create: Effect.fn("Connections.create")(function* (tenantId: string, input: CreateConnection) {
          const connector = yield* connectorNamed(input.connector);
          const encoded = yield* validate(connector, input.config);
          const id = randomUUID();
          const row = yield* db
            .query((k) =>
              k
                .insertInto("connections")
                .values({
                  id,
                  tenant_id: tenantId,
                  connector: connector.name,
                  name: input.name,
                  config_ciphertext: cipher.encrypt(JSON.stringify(encoded), aad({ id, tenant_id: tenantId })),
                })
                .returningAll()
                .executeTakeFirstOrThrow(),
            )
            .pipe(Effect.catchTag("ConstraintViolation", duplicateName(input.name)));
          return yield* view(row);
        }),

        list: Effect.fn("Connections.list")(function* (tenantId: string) {
          const rows = yield* db
            .query((k) =>
              k
                .selectFrom("connections")
                .selectAll()
                .where("tenant_id", "=", tenantId)
                .orderBy("created_at")
                .orderBy("id")
                .execute(),
            )
            .pipe(Effect.orDie);
          return yield* Effect.forEach(rows, view);
        }),

        get: Effect.fn("Connections.get")(function* (tenantId: string, id: string) {
          return yield* view(yield* find(tenantId, id));
        }),

        update: Effect.fn("Connections.update")(function* (tenantId: string, id: string, input: UpdateConnection) {
          return yield* db.transaction(
            Effect.gen(function* () {
              const row = yield* find(tenantId, id);
              let ciphertext = row.config_ciphertext;
              if (input.config !== undefined) {
                const connector = yield* connectorNamed(row.connector);
                const stored = (yield* decrypt(row)) as Record<string, unknown>;
                const encoded = yield* validate(connector, { ...stored, ...input.config });
                ciphertext = cipher.encrypt(JSON.stringify(encoded), aad(row));
              }
              const updated = yield* db
                .query((k) =>
                  k
                    .updateTable("connections")
                    .set({
                      ...(input.name !== undefined ? { name: input.name } : {}),
                      ...(input.paused !== undefined ? { paused: input.paused } : {}),
                      config_ciphertext: ciphertext,
                      // A rotated refresh token belongs to the credentials it came from: new ones replace it.
                      ...(input.config !== undefined ? { refresh_state_ciphertext: null } : {}),
                      updated_at: new Date(),
                    })
                    .where("id", "=", id)
                    .where("tenant_id", "=", tenantId)
                    .returningAll()
                    .executeTakeFirst(),
                )
                .pipe(Effect.catchTag("ConstraintViolation", duplicateName(input.name ?? row.name)));
              // Deleted by a concurrent request since `find` read it (the fuzzer's 500: Kysely's
              // "no result" was taken for an outage).
              if (updated === undefined) return yield* new ResourceNotFound({ resource: "connection", id });
              return yield* view(updated);
            }),
          );
        }),

        delete: Effect.fn("Connections.delete")(function* (tenantId: string, id: string) {
          const row = yield* db
            .transaction(
              Effect.gen(function* () {
                const deleted = yield* db.query((k) =>
                  k
                    .deleteFrom("connections")
                    .where("tenant_id", "=", tenantId)
                    .where("id", "=", id)
                    .returning("id")
                    .executeTakeFirst(),
                );
                // Records carry no foreign key, so they go here. After the connection's row:
                // that delete waited for any upsert holding the row, whose records this
                // statement (a new snapshot) therefore sees; later upserts find no connection.
                if (deleted !== undefined) {
                  yield* db.query((k) => deleteRecordsOfConnection(k, id));
                  // Its rate budget too (no foreign key either; a lease in flight may recreate
                  // the row, which then only waits for nobody).
                  yield* db.query((k) => deleteRateBudgetOf(k, id));
                }
                return deleted;
              }),
            )
            .pipe(Effect.orDie);
          if (row === undefined) return yield* new ResourceNotFound({ resource: "connection", id });
          return { id: row.id };
        }),

        getSettings: Effect.fn("Connections.getSettings")(function* (tenantId: string, id: string) {
          return yield* settingsOf(yield* find(tenantId, id));
        }),

        setSettings: Effect.fn("Connections.setSettings")(function* (tenantId: string, id: string, input: unknown) {
          const entities = yield* Schema.decodeUnknown(SyncSettingsInput)(input, {
            errors: "all",
            onExcessProperty: "error",
          }).pipe(Effect.mapError((e) => invalidInput(e, ["entities"])));
          return yield* db.transaction(
            Effect.gen(function* () {
              const row = yield* find(tenantId, id);
              const connector = yield* connectorNamed(row.connector);
              const issues = settingsIssues(connector, entities);
              for (const [entity, own] of Object.entries(entities)) {
                if (own?.conflictPolicy?.kind === "llm") {
                  issues.push(
                    ...refusedUrls(own.conflictPolicy.baseUrl, ["entities", entity, "conflictPolicy", "baseUrl"]),
                  );
                }
              }
              if (issues.length > 0) return yield* new InvalidInput({ issues: issues.slice(0, 20) });
              const stored: Record<string, StoredEntitySettings> = {
                ...((row.sync_settings ?? {}) as StoredSyncSettings),
              };
              for (const [entity, own] of Object.entries(entities)) {
                if (own === null) {
                  delete stored[entity];
                  continue;
                }
                const policy = own.conflictPolicy;
                if (policy?.kind !== "llm") {
                  stored[entity] = own as StoredEntitySettings;
                  continue;
                }
                const { apiKey, ...rest } = policy;
                const previous = stored[entity]?.conflictPolicy;
                const apiKeyCiphertext =
                  apiKey !== undefined
                    ? cipher.encrypt(apiKey, llmKeyAad(row, entity))
                    : previous?.kind === "llm"
                      ? previous.apiKeyCiphertext
                      : undefined;
                const storedPolicy: StoredConflictPolicy = {
                  ...rest,
                  ...(apiKeyCiphertext !== undefined ? { apiKeyCiphertext } : {}),
                };
                stored[entity] = { ...own, conflictPolicy: storedPolicy };
              }
              const updated = yield* db
                .query((k) =>
                  k
                    .updateTable("connections")
                    .set({ sync_settings: JSON.stringify(stored), updated_at: new Date() })
                    .where("id", "=", id)
                    .where("tenant_id", "=", tenantId)
                    .returningAll()
                    .executeTakeFirst(),
                )
                .pipe(Effect.orDie);
              if (updated === undefined) return yield* new ResourceNotFound({ resource: "connection", id });
              return yield* settingsOf(updated);
            }),
          );
        }),

        assertOwned: (tenantId: string, id: string) => Effect.asVoid(find(tenantId, id)),

        resolveById: Effect.fn("Connections.resolveById")(function* (id: string) {
          const row = yield* db
            .query((k) => k.selectFrom("connections").selectAll().where("id", "=", id).executeTakeFirst())
            .pipe(Effect.orDie);
          if (row === undefined) return yield* new ResourceNotFound({ resource: "connection", id });
          return yield* withConfig(row);
        }),

        resolve: Effect.fn("Connections.resolve")(function* (tenantId: string, id: string) {
          return yield* withConfig(yield* find(tenantId, id));
        }),
      };
    }),
  );
}
