import { expect, layer } from "@effect/vitest";
import { ApiKeys, Connections, Database, defineConnector, generateSecretKey, REDACTED, Tenants } from "@tandem/core";
import { dialects, testEngineLayer } from "@tandem/testkit";
import { Effect, Option, Redacted, Schema } from "effect";

const acme = defineConnector({
  name: "acme",
  version: "1.0.0",
  config: Schema.Struct({
    baseUrl: Schema.String,
    token: Schema.Redacted(Schema.NonEmptyString),
    nested: Schema.optional(Schema.Struct({ password: Schema.Redacted(Schema.String), user: Schema.String })),
  }),
  entities: {},
});

const key = Buffer.from(generateSecretKey(), "base64url");
const services = (dialect: (typeof dialects)[number]) =>
  testEngineLayer({ dialect, connectors: [acme], secretKey: Redacted.make(key) });

for (const dialect of dialects) {
  layer(services(dialect))(`tenant services on ${dialect}`, (it) => {
    it.effect("API keys are stored only as hashes, authenticate their tenant, and stop working once revoked", () =>
      Effect.gen(function* () {
        const tenant = yield* Effect.flatMap(Tenants, (t) => t.create({ name: "Acme" }));
        const keys = yield* ApiKeys;
        const created = yield* keys.create({ tenantId: tenant.id, name: "ci" });
        expect(created.key).toMatch(/^tdm_[\w-]{43}$/);
        const rows = yield* Effect.flatMap(Database, (db) =>
          db.query((k) => k.selectFrom("api_keys").selectAll().execute()),
        );
        expect(JSON.stringify(rows)).not.toContain(created.key.slice(4));
        expect(yield* keys.authenticate(created.key)).toEqual(
          Option.some({ role: "tenant", tenantId: tenant.id, keyId: created.id }),
        );
        expect(yield* keys.authenticate(`${created.key}x`)).toEqual(Option.none());
        yield* keys.revoke(created.id);
        expect(yield* keys.authenticate(created.key)).toEqual(Option.none());
        const again = yield* Effect.flip(keys.revoke(created.id));
        expect(again._tag).toBe("ResourceNotFound");
      }),
    );

    it.effect("a key for an unknown tenant is refused with ResourceNotFound", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          Effect.flatMap(ApiKeys, (k) => k.create({ tenantId: crypto.randomUUID(), name: "x" })),
        );
        expect(error._tag).toBe("ResourceNotFound");
      }),
    );

    it.effect("the bootstrap admin key is created once, whoever asks first", () =>
      Effect.gen(function* () {
        const keys = yield* ApiKeys;
        const results = yield* Effect.all(
          [keys.bootstrapAdminKey(), keys.bootstrapAdminKey(), keys.bootstrapAdminKey()],
          {
            concurrency: "unbounded",
          },
        );
        const created = results.filter(Option.isSome);
        expect(created.length).toBe(1);
        expect(yield* keys.authenticate(created[0]!.value)).toEqual(Option.some({ role: "admin" }));
        expect(Option.isNone(yield* keys.bootstrapAdminKey())).toBe(true);
      }),
    );

    it.effect("connections: validated, encrypted at rest, redacted on output, scoped to their tenant", () =>
      Effect.gen(function* () {
        const tenants = yield* Tenants;
        const a = yield* tenants.create({ name: "A" });
        const b = yield* tenants.create({ name: "B" });
        const connections = yield* Connections;
        const created = yield* connections.create(a.id, {
          connector: "acme",
          name: "main",
          config: {
            baseUrl: "https://acme.test",
            token: "tok-SECRET-1",
            nested: { user: "u", password: "pw-SECRET-2" },
          },
        });
        expect(created.config).toEqual({
          baseUrl: "https://acme.test",
          token: REDACTED,
          nested: { user: "u", password: REDACTED },
        });
        const raw = yield* Effect.flatMap(Database, (db) =>
          db.query((k) =>
            k.selectFrom("connections").selectAll().where("id", "=", created.id).executeTakeFirstOrThrow(),
          ),
        );
        expect(raw.config_ciphertext).toMatch(/^v1\./);
        expect(raw.config_ciphertext).not.toContain("SECRET");

        // Tenant B sees nothing of A's.
        expect((yield* Effect.flip(connections.get(b.id, created.id)))._tag).toBe("ResourceNotFound");
        expect((yield* Effect.flip(connections.update(b.id, created.id, { name: "x" })))._tag).toBe("ResourceNotFound");
        expect((yield* Effect.flip(connections.delete(b.id, created.id)))._tag).toBe("ResourceNotFound");
        expect(yield* connections.list(b.id)).toEqual([]);

        // Config updates merge: the secret stays without being re-sent.
        const updated = yield* connections.update(a.id, created.id, { config: { baseUrl: "https://eu.acme.test" } });
        expect(updated.config.baseUrl).toBe("https://eu.acme.test");
        const resolved = yield* connections.resolve(a.id, created.id);
        expect(Redacted.value((resolved.config as { token: Redacted.Redacted<string> }).token)).toBe("tok-SECRET-1");

        expect(yield* connections.delete(a.id, created.id)).toEqual({ id: created.id });
        expect(yield* connections.list(a.id)).toEqual([]);
      }),
    );

    it.effect("connections: bad config names the field; duplicate names conflict", () =>
      Effect.gen(function* () {
        const tenant = yield* Effect.flatMap(Tenants, (t) => t.create({ name: "C" }));
        const connections = yield* Connections;
        const invalid = yield* Effect.flip(
          connections.create(tenant.id, { connector: "acme", name: "x", config: { baseUrl: 5, extra: 1 } }),
        );
        expect(invalid._tag).toBe("InvalidInput");
        if (invalid._tag !== "InvalidInput") return;
        expect(invalid.issues.map((i) => i.path).sort()).toEqual(["config.baseUrl", "config.extra", "config.token"]);

        const unknown = yield* Effect.flip(connections.create(tenant.id, { connector: "nope", name: "x", config: {} }));
        expect(unknown._tag === "InvalidInput" && unknown.issues[0]?.path).toBe("connector");

        const config = { baseUrl: "https://acme.test", token: "t" };
        yield* connections.create(tenant.id, { connector: "acme", name: "dup", config });
        const duplicate = yield* Effect.flip(connections.create(tenant.id, { connector: "acme", name: "dup", config }));
        expect(duplicate._tag).toBe("AlreadyExists");
      }),
    );
  });
}
