import { Effect } from "effect";
import { runProcedure } from "../errors.ts";
import { Readiness } from "../Readiness.ts";
import { publicProcedure } from "../trpc.ts";

/** Public: the shared, briefly cached readiness probe (Readiness.ts), never a query per call. */
export const health = publicProcedure.query(({ ctx }) =>
  runProcedure(
    ctx,
    Effect.flatMap(Readiness, (r) => r.check).pipe(Effect.map((r) => ({ status: r.ok ? "ok" : "degraded", ...r }))),
  ),
);
