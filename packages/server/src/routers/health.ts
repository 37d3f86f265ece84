import { Database } from "@tandem/core";
import { Effect } from "effect";
import { runProcedure } from "../errors.ts";
import { publicProcedure } from "../trpc.ts";

export const health = publicProcedure.query(({ ctx }) =>
  runProcedure(
    ctx,
    Effect.flatMap(Database, (db) => db.ready).pipe(Effect.map((r) => ({ status: r.ok ? "ok" : "degraded", ...r }))),
  ),
);
