import { randomUUID } from "node:crypto";
import { Context, Effect, Layer } from "effect";
import { Database } from "../db/Database.ts";
import type { TenantRow } from "../db/schema.ts";

export interface Tenant {
  readonly id: string;
  readonly name: string;
  readonly createdAt: string;
}

const toTenant = (row: TenantRow): Tenant => ({ id: row.id, name: row.name, createdAt: row.created_at.toISOString() });

/** Tenants: the unit of isolation. Every other resource belongs to exactly one. */
export class Tenants extends Context.Tag("@tandem/core/Tenants")<
  Tenants,
  {
    readonly create: (input: { readonly name: string }) => Effect.Effect<Tenant>;
    readonly list: () => Effect.Effect<ReadonlyArray<Tenant>>;
    readonly exists: (id: string) => Effect.Effect<boolean>;
  }
>() {
  static readonly layer = Layer.effect(
    Tenants,
    Effect.gen(function* () {
      const db = yield* Database;
      return {
        create: Effect.fn("Tenants.create")(function* (input: { readonly name: string }) {
          const row = yield* db
            .query((k) =>
              k
                .insertInto("tenants")
                .values({ id: randomUUID(), name: input.name })
                .returningAll()
                .executeTakeFirstOrThrow(),
            )
            .pipe(Effect.orDie);
          return toTenant(row);
        }),
        list: Effect.fn("Tenants.list")(function* () {
          const rows = yield* db
            .query((k) => k.selectFrom("tenants").selectAll().orderBy("created_at").orderBy("id").execute())
            .pipe(Effect.orDie);
          return rows.map(toTenant);
        }),
        exists: Effect.fn("Tenants.exists")(function* (id: string) {
          const row = yield* db
            .query((k) => k.selectFrom("tenants").select("id").where("id", "=", id).executeTakeFirst())
            .pipe(Effect.orDie);
          return row !== undefined;
        }),
      };
    }),
  );
}
