import { Schema } from "effect";

/**
 * A Taskboard connection's config, as an operator enters it. `apiKey` is a secret:
 * `Schema.Redacted` keeps it out of logs and API answers (Tandem stores it encrypted).
 *
 * @example
 * { baseUrl: "https://api.taskboard.example", apiKey: "tb_live_...", pageSize: 50 }
 */
export const TaskboardConfig = Schema.Struct({
  /** The API root, without a trailing slash. Point it at a sandbox, a proxy or a test fake. */
  baseUrl: Schema.String.pipe(Schema.pattern(/^https?:\/\//)),
  apiKey: Schema.Redacted(Schema.NonEmptyString),
  /** Tasks per page. Default 100 (Taskboard allows 1 to 200). */
  pageSize: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.between(1, 200))),
  /** The signing secret of the webhook subscription; without it every webhook is refused. */
  webhookSecret: Schema.optional(Schema.Redacted(Schema.NonEmptyString)),
});

/** The decoded config, as `ctx.config`. */
export type TaskboardConfig = typeof TaskboardConfig.Type;
