import { Connections, createConnection, EntitySync, setConnectionSettings } from "@tandem/core";
import { Effect, Schema } from "effect";
import { runProcedure } from "../errors.ts";
import { authedProcedure, router } from "../trpc.ts";
import { Id, input, Name } from "./schemas.ts";

const ConnectorName = Schema.String.pipe(Schema.maxLength(100), Schema.pattern(/^[a-z0-9][a-z0-9-]*$/)).annotations({
  message: () => "must be a connector name (lowercase letters, digits, dashes)",
});
const ConfigObject = Schema.Record({ key: Schema.String, value: Schema.Unknown });

export const connectionsRouter = router({
  /**
   * `config` is validated against the connector's schema; secret fields are never returned.
   * Each entity gets the server's default schedules: a delta (`TANDEM_DELTA_CRON`), a reconciliation by its flags.
   */
  create: authedProcedure
    .input(input(Schema.Struct({ connector: ConnectorName, name: Name, config: ConfigObject })))
    .mutation(({ ctx, input }) => runProcedure(ctx, createConnection(ctx.tenantId, input))),
  list: authedProcedure.query(({ ctx }) =>
    runProcedure(
      ctx,
      Effect.flatMap(Connections, (c) => c.list(ctx.tenantId)),
    ),
  ),
  get: authedProcedure.input(input(Schema.Struct({ id: Id }))).query(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(Connections, (c) => c.get(ctx.tenantId, input.id)),
    ),
  ),
  /** `config` is merged over the stored config, so secrets need not be re-sent. */
  update: authedProcedure
    .input(
      input(
        Schema.Struct({
          id: Id,
          name: Schema.optional(Name),
          config: Schema.optional(ConfigObject),
          paused: Schema.optional(Schema.Boolean),
        }),
      ),
    )
    .mutation(({ ctx, input: { id, ...changes } }) =>
      runProcedure(
        ctx,
        Effect.flatMap(Connections, (c) => c.update(ctx.tenantId, id, changes)),
      ),
    ),
  /**
   * Tests the connection with its connector's credential check: `{ ok, checked, error? }`. A
   * refused or unreachable vendor is an answer (`ok: false`, with the reason), not an API error.
   */
  test: authedProcedure.input(input(Schema.Struct({ id: Id }))).mutation(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(EntitySync, (engine) => engine.check({ tenantId: ctx.tenantId, connectionId: input.id })),
    ),
  ),
  /**
   * Per-connection sync settings, by entity: `get` answers every entity's effective settings (the
   * connection's own, else the connector's or the server's defaults; `sources` says which), an LLM key as
   * "[redacted]". `set` replaces the named entities' settings (null: back to the defaults),
   * validated against the connector's entities and fields, and re-applies the schedules.
   */
  settings: router({
    get: authedProcedure.input(input(Schema.Struct({ id: Id }))).query(({ ctx, input }) =>
      runProcedure(
        ctx,
        Effect.flatMap(Connections, (c) => c.getSettings(ctx.tenantId, input.id)),
      ),
    ),
    set: authedProcedure
      .input(input(Schema.Struct({ id: Id, entities: Schema.Record({ key: Schema.String, value: Schema.Unknown }) })))
      .mutation(({ ctx, input }) => runProcedure(ctx, setConnectionSettings(ctx.tenantId, input.id, input.entities))),
  }),
  delete: authedProcedure.input(input(Schema.Struct({ id: Id }))).mutation(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(Connections, (c) => c.delete(ctx.tenantId, input.id)),
    ),
  ),
});
