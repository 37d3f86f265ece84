import { defineEntity, InvalidRecord, NotFound, type ReadPage } from "@tandem/connector-sdk";
import { Schema } from "effect";
import { decodeBody, type TaskboardContext, taskboardRequest } from "../client.ts";
import type { TaskboardConfig } from "../config.ts";
import { DeletedWire, TaskPageWire, TaskWire } from "../wire.ts";

/** A task, normalized: what Tandem stores and serves. */
export const Task = Schema.Struct({
  id: Schema.NonEmptyString,
  title: Schema.String,
  completed: Schema.Boolean,
  assigneeEmail: Schema.NullOr(Schema.String),
  updatedAt: Schema.Date,
});
export type Task = typeof Task.Type;

/**
 * Wire -> the normalized record in its encoded (JSON) form: the engine decodes it with
 * `Task`. A task that does not match the wire schema is passed on unchanged, so the
 * engine rejects that one record (an InvalidRecord with its id) and the read goes on.
 */
const toRecord = (raw: unknown): unknown => {
  const wire = Schema.decodeUnknownEither(TaskWire)(raw);
  if (wire._tag === "Left") return raw;
  return {
    id: wire.right.task_id,
    title: wire.right.title,
    completed: wire.right.done,
    assigneeEmail: wire.right.assignee_email,
    updatedAt: new Date(wire.right.modified_at).toISOString(),
  };
};

/** A whole task from a single-task answer (get, writes), as the record type. */
const toTask = (raw: unknown): Task => {
  const task = Schema.decodeUnknownEither(Task)(toRecord(raw));
  if (task._tag === "Left") throw new InvalidRecord({ message: `malformed task: ${task.left.message}` });
  return task.right;
};

/** Normalized changes -> Taskboard's field names. */
const toWireFields = (changes: Partial<Task>) => ({
  ...(changes.title !== undefined ? { title: changes.title } : {}),
  ...(changes.completed !== undefined ? { done: changes.completed } : {}),
  ...(changes.assigneeEmail !== undefined ? { assignee_email: changes.assigneeEmail } : {}),
});

/*
 * The read cursor: `list:<page token>` while paging tasks, then `deleted` for the
 * deletions listing that ends a delta read. Opaque to the engine, which saves it after
 * each page and hands it back to resume.
 */
const listCursor = (token: string) => `list:${token}`;
const deletedCursor = "deleted";

/**
 * `GET /v1/tasks?modified_since=&page_token=`: ordered by id, `modified_since` inclusive.
 * A delta read (`since`) ends with `GET /v1/tasks/deleted?since=`, whose ids are the page's
 * `deleted` (hence `deletes: "api"`).
 * See https://taskboard.example/docs/api#list-tasks (fictional)
 */
async function* readTasks(
  ctx: TaskboardContext,
  options: { readonly since?: Date | undefined; readonly cursor?: string | undefined },
): AsyncGenerator<ReadPage> {
  const since = options.since?.getTime();
  let token = options.cursor?.startsWith("list:") ? options.cursor.slice("list:".length) : undefined;
  if (options.cursor !== deletedCursor) {
    do {
      // A cancelled run must fail, never end early: an early end would look like "no more tasks".
      ctx.signal.throwIfAborted();
      const response = await taskboardRequest(ctx, {
        path: "/v1/tasks",
        query: { limit: ctx.config.pageSize ?? 100, page_token: token, modified_since: since },
      });
      const page = decodeBody(TaskPageWire, response.body, "GET /v1/tasks");
      token = page.next_page_token ?? undefined;
      const next = token !== undefined ? listCursor(token) : since !== undefined ? deletedCursor : undefined;
      yield { records: page.items.map(toRecord), cursor: next };
    } while (token !== undefined);
  }
  if (since === undefined) return;
  const response = await taskboardRequest(ctx, { path: "/v1/tasks/deleted", query: { since } });
  yield { records: [], deleted: decodeBody(DeletedWire, response.body, "GET /v1/tasks/deleted").ids };
}

/** Taskboard tasks: full and delta reads, deletions from its deletions listing, get, and writes. */
export const tasks = defineEntity<Task, TaskboardConfig>({
  record: Task,
  primaryKey: (task) => task.id,
  updatedAt: (task) => task.updatedAt,
  read: readTasks,
  get: async (ctx, id) => {
    try {
      const response = await taskboardRequest(ctx, { path: `/v1/tasks/${encodeURIComponent(id)}` });
      return toTask(response.body);
    } catch (error) {
      if (error instanceof NotFound) return null;
      throw error;
    }
  },
  write: {
    create: async (ctx, task) => {
      const response = await taskboardRequest(ctx, { method: "POST", path: "/v1/tasks", body: toWireFields(task) });
      return toTask(response.body);
    },
    update: async (ctx, id, changes) => {
      const response = await taskboardRequest(ctx, {
        method: "PATCH",
        path: `/v1/tasks/${encodeURIComponent(id)}`,
        body: toWireFields(changes),
      });
      return toTask(response.body);
    },
    delete: async (ctx, id) => {
      await taskboardRequest(ctx, { method: "DELETE", path: `/v1/tasks/${encodeURIComponent(id)}` });
    },
  },
  deletes: "api",
  webhooks: true,
  // A reassignment is pushed at once; title edits wait for the next push batch.
  criticalFields: ["assigneeEmail"],
});
