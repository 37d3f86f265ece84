import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { Context, Effect, Layer, Option, Redacted } from "effect";
import { Database } from "../db/Database.ts";
import { ResourceNotFound } from "../errors/Errors.ts";

/** Who a request acts as. */
export type Principal =
  | { readonly role: "admin" }
  | { readonly role: "tenant"; readonly tenantId: string; readonly keyId: string };

export interface CreatedApiKey {
  readonly id: string;
  readonly tenantId: string;
  readonly name: string;
  readonly prefix: string;
  /** The key itself: returned once, at creation, and never stored. */
  readonly key: string;
  readonly createdAt: string;
}

const KEY_PREFIX = "tdm_";

/** A new key: 256 random bits, base64url, with a recognizable prefix for secret scanners. */
export const generateApiKey = (): string => KEY_PREFIX + randomBytes(32).toString("base64url");

const hashKey = (key: string): string => createHash("sha256").update(key).digest("hex");
const displayPrefix = (key: string) => key.slice(0, KEY_PREFIX.length + 6);

/** The API keys' configuration, a root of the engine; by default no TANDEM_ADMIN_KEY. */
export class ApiKeysConfig extends Context.Reference<ApiKeysConfig>()("@tandem/core/ApiKeysConfig", {
  defaultValue: (): {
    /** TANDEM_ADMIN_KEY, if set: authoritative for admin access in every process. */
    readonly adminKey: Option.Option<Redacted.Redacted<string>>;
  } => ({ adminKey: Option.none() }),
}) {}

/**
 * API keys, stored only as SHA-256 hashes. Tenant keys scope a request to their
 * tenant; the admin key (from the environment, or bootstrapped once into the
 * database) manages tenants and keys.
 */
export class ApiKeys extends Context.Tag("@tandem/core/ApiKeys")<
  ApiKeys,
  {
    readonly create: (input: {
      readonly tenantId: string;
      readonly name: string;
    }) => Effect.Effect<CreatedApiKey, ResourceNotFound>;
    readonly revoke: (
      id: string,
    ) => Effect.Effect<{ readonly id: string; readonly revokedAt: string }, ResourceNotFound>;
    readonly authenticate: (key: string) => Effect.Effect<Option.Option<Principal>>;
    /**
     * Without TANDEM_ADMIN_KEY, makes sure one admin key exists: the first process
     * to start creates it and gets the plaintext back (to print once); the others get none.
     */
    readonly bootstrapAdminKey: () => Effect.Effect<Option.Option<string>>;
  }
>() {
  /** Needs Database; reads ApiKeysConfig. */
  static readonly layerNoDeps = Layer.effect(
    ApiKeys,
    Effect.gen(function* () {
      const db = yield* Database;
      const config = yield* ApiKeysConfig;
      const envAdminHash = Option.map(config.adminKey, (k) => Buffer.from(hashKey(Redacted.value(k)), "hex"));

      return {
        create: Effect.fn("ApiKeys.create")(function* (input: { readonly tenantId: string; readonly name: string }) {
          const key = generateApiKey();
          const row = yield* db
            .query((k) =>
              k
                .insertInto("api_keys")
                .values({
                  id: randomUUID(),
                  tenant_id: input.tenantId,
                  role: "tenant",
                  name: input.name,
                  prefix: displayPrefix(key),
                  key_hash: hashKey(key),
                  revoked_at: null,
                })
                .returningAll()
                .executeTakeFirstOrThrow(),
            )
            .pipe(
              Effect.catchTag("ConstraintViolation", (e) =>
                e.kind === "foreign_key"
                  ? new ResourceNotFound({ resource: "tenant", id: input.tenantId })
                  : Effect.die(e),
              ),
            );
          return {
            id: row.id,
            tenantId: input.tenantId,
            name: row.name,
            prefix: row.prefix,
            key,
            createdAt: row.created_at.toISOString(),
          };
        }),

        revoke: Effect.fn("ApiKeys.revoke")(function* (id: string) {
          const row = yield* db
            .query((k) =>
              k
                .updateTable("api_keys")
                .set({ revoked_at: new Date() })
                .where("id", "=", id)
                .where("role", "=", "tenant")
                .where("revoked_at", "is", null)
                .returning(["id", "revoked_at"])
                .executeTakeFirst(),
            )
            .pipe(Effect.orDie);
          if (row?.revoked_at == null) return yield* new ResourceNotFound({ resource: "api key", id });
          return { id: row.id, revokedAt: row.revoked_at.toISOString() };
        }),

        authenticate: Effect.fn("ApiKeys.authenticate")(function* (key: string) {
          const hash = hashKey(key);
          if (Option.isSome(envAdminHash) && timingSafeEqual(envAdminHash.value, Buffer.from(hash, "hex"))) {
            return Option.some<Principal>({ role: "admin" });
          }
          // The lookup is by hash of a 256-bit secret, so timing reveals nothing useful.
          const row = yield* db
            .query((k) =>
              k
                .selectFrom("api_keys")
                .select(["id", "tenant_id", "role"])
                .where("key_hash", "=", hash)
                .where("revoked_at", "is", null)
                .executeTakeFirst(),
            )
            .pipe(Effect.orDie);
          if (row === undefined) return Option.none<Principal>();
          if (row.role === "admin") return Option.some<Principal>({ role: "admin" });
          return row.tenant_id === null
            ? Option.none<Principal>()
            : Option.some<Principal>({ role: "tenant", tenantId: row.tenant_id, keyId: row.id });
        }),

        bootstrapAdminKey: Effect.fn("ApiKeys.bootstrapAdminKey")(function* () {
          if (Option.isSome(config.adminKey)) return Option.none<string>();
          const key = generateApiKey();
          const inserted = yield* db
            .query((k) =>
              k
                .insertInto("api_keys")
                .values({
                  id: randomUUID(),
                  tenant_id: null,
                  role: "admin",
                  name: "bootstrap admin",
                  prefix: displayPrefix(key),
                  key_hash: hashKey(key),
                  revoked_at: null,
                })
                .onConflict((oc) =>
                  oc.column("role").where("role", "=", "admin").where("revoked_at", "is", null).doNothing(),
                )
                .returning("id")
                .executeTakeFirst(),
            )
            .pipe(Effect.orDie);
          return inserted === undefined ? Option.none<string>() : Option.some(key);
        }),
      };
    }),
  );

  /** The only dependency is the Database root. */
  static readonly layer = ApiKeys.layerNoDeps;
}
