import { Alerts, Tenants } from "@tandem/core";
import { Effect, Schema } from "effect";
import { runProcedure } from "../errors.ts";
import { adminProcedure, router } from "../trpc.ts";
import { input, Name } from "./schemas.ts";

export const tenantsRouter = router({
  create: adminProcedure.input(input(Schema.Struct({ name: Name }))).mutation(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(Tenants, (t) => t.create(input)),
    ),
  ),
  list: adminProcedure.query(({ ctx }) =>
    runProcedure(
      ctx,
      Effect.flatMap(Tenants, (t) => t.list()),
    ),
  ),
});
