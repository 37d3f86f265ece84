import { ApiKeys } from "@tandem/core";
import { Effect, Schema } from "effect";
import { runProcedure } from "../errors.ts";
import { adminProcedure, router } from "../trpc.ts";
import { Id, input, Name } from "./schemas.ts";

export const apiKeysRouter = router({
  /** Returns the key once; only its hash is stored. */
  create: adminProcedure.input(input(Schema.Struct({ tenantId: Id, name: Name }))).mutation(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(ApiKeys, (k) => k.create(input)),
    ),
  ),
  revoke: adminProcedure.input(input(Schema.Struct({ id: Id }))).mutation(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(ApiKeys, (k) => k.revoke(input.id)),
    ),
  ),
});
