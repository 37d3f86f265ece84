import { OutboundEventType, OutboundWebhooks } from "@tandem/core";
import { Effect, Schema } from "effect";
import { runProcedure } from "../errors.ts";
import { authedProcedure, router } from "../trpc.ts";
import { Cursor, Id, input, Limit } from "./schemas.ts";

const HttpUrl = Schema.String.pipe(Schema.pattern(/^https?:\/\/[^\s]+$/), Schema.maxLength(2_000)).annotations({
  message: () => "must be an http(s) URL",
});

/** Outbound webhooks: subscriptions, their delivery log, and replay. */
export const webhooksRouter = router({
  /** Returns the signing secret once (`tandem-signature: t=...,v1=<HMAC-SHA256 of "t.body">`). */
  create: authedProcedure
    .input(input(Schema.Struct({ url: HttpUrl, events: Schema.Array(OutboundEventType).pipe(Schema.minItems(1)) })))
    .mutation(({ ctx, input }) =>
      runProcedure(
        ctx,
        Effect.flatMap(OutboundWebhooks, (w) => w.create(ctx.tenantId, input)),
      ),
    ),
  list: authedProcedure.query(({ ctx }) =>
    runProcedure(
      ctx,
      Effect.flatMap(OutboundWebhooks, (w) => w.list(ctx.tenantId)),
    ),
  ),
  delete: authedProcedure.input(input(Schema.Struct({ id: Id }))).mutation(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(OutboundWebhooks, (w) => w.delete(ctx.tenantId, input.id)),
    ),
  ),
  deliveries: authedProcedure
    .input(
      input(
        Schema.Struct({
          subscriptionId: Schema.optional(Id),
          status: Schema.optional(Schema.Literal("pending", "delivered", "dead")),
          cursor: Schema.optional(Cursor),
          limit: Schema.optional(Limit),
        }),
      ),
    )
    .query(({ ctx, input }) =>
      runProcedure(
        ctx,
        Effect.flatMap(OutboundWebhooks, (w) => w.deliveries(ctx.tenantId, input)),
      ),
    ),
  /** Sends a delivery again (dead or delivered), with a fresh round of attempts. */
  replay: authedProcedure.input(input(Schema.Struct({ deliveryId: Id }))).mutation(({ ctx, input }) =>
    runProcedure(
      ctx,
      Effect.flatMap(OutboundWebhooks, (w) => w.replay(ctx.tenantId, input.deliveryId)),
    ),
  ),
});
