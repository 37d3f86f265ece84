import { Schema } from "effect";

/*
 * Taskboard's wire formats, exactly as the API sends them: kept apart from the normalized
 * record (./entities/tasks.ts), so a vendor rename touches one mapping, not every consumer.
 */

/** A task as `GET /v1/tasks` and `GET /v1/tasks/{id}` send it. `modified_at` is epoch milliseconds. */
export const TaskWire = Schema.Struct({
  task_id: Schema.String,
  title: Schema.String,
  done: Schema.Boolean,
  assignee_email: Schema.NullOr(Schema.String),
  modified_at: Schema.Number,
});
export type TaskWire = typeof TaskWire.Type;

/** One page of `GET /v1/tasks`: no `next_page_token` on the last page. */
export const TaskPageWire = Schema.Struct({
  items: Schema.Array(Schema.Unknown),
  next_page_token: Schema.optional(Schema.NullOr(Schema.String)),
});

/** `GET /v1/tasks/deleted?since=`: ids of tasks deleted at or after `since` (kept 30 days). */
export const DeletedWire = Schema.Struct({ ids: Schema.Array(Schema.String) });

/** A webhook delivery: a batch of events. */
export const WebhookWire = Schema.Struct({
  events: Schema.Array(
    Schema.Struct({
      event_id: Schema.String,
      type: Schema.Literal("task.created", "task.updated", "task.deleted"),
      task_id: Schema.String,
      occurred_at: Schema.Number,
    }),
  ),
});
