import { Alerts, Tenants } from "@tandem/core";
import { Effect, Schema } from "effect";
import { runProcedure } from "../errors.ts";
import { adminProcedure, router } from "../trpc.ts";
import { input, Name } from "./schemas.ts";

export const tenantsRouter = router({
  /** A new tenant starts with the default alert rules (failures, error rate, backlog, staleness, performance). */
  create: adminProcedure
    .input(input(Schema.Struct({ name: Name })))
    .mutation(({ ctx, input }) =>
      runProcedure(
        ctx,
        Effect.flatMap(Tenants, (t) => t.create(input)).pipe(
          Effect.tap((tenant) => Effect.flatMap(Alerts, (a) => a.ensureDefaultRules(tenant.id))),
        ),
      ),
    ),
  list: adminProcedure.query(({ ctx }) =>
    runProcedure(
      ctx,
      Effect.flatMap(Tenants, (t) => t.list()),
    ),
  ),
});
