import { HttpResponse, http } from "msw";
import { taskboardSignature } from "../../src/index.ts";

/** A task as the fake stores it: the wire format. */
export interface StoredTask {
  task_id: string;
  title: string;
  done: boolean;
  assignee_email: string | null;
  modified_at: number;
}

/**
 * A small stateful fake of the Taskboard API, served with MSW: tasks in memory, its own
 * clock (each change one second after the last), bearer auth, paging, the deletions
 * listing, writes, rate-limit headers, and queued failures. Enough to test the connector
 * against the API's behaviour rather than against canned answers.
 */
export const createTaskboardFake = (options: { readonly baseUrl?: string; readonly apiKey?: string } = {}) => {
  const baseUrl = options.baseUrl ?? "https://taskboard.test";
  const apiKey = options.apiKey ?? "tb_test_key";
  const tasks = new Map<string, StoredTask>();
  const deletions = new Map<string, number>();
  const failures: Array<{ status: number; retryAfterSeconds?: number }> = [];
  let now = Date.UTC(2026, 0, 1);
  let nextId = 1;

  const tick = () => (now += 1_000);
  const sortedIds = () => [...tasks.keys()].sort();
  const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
    HttpResponse.json(body as Record<string, unknown>, {
      status,
      headers: { "x-ratelimit-remaining": "100", "x-ratelimit-reset": "1", ...headers },
    });

  /** Auth and queued failures, before any route answers. */
  const guard = (request: Request): Response | undefined => {
    if (request.headers.get("authorization") !== `Bearer ${apiKey}`) return json({ error: "unauthorized" }, 401);
    const failure = failures.shift();
    if (failure === undefined) return undefined;
    return json(
      { error: `injected ${failure.status}` },
      failure.status,
      failure.retryAfterSeconds === undefined ? {} : { "retry-after": String(failure.retryAfterSeconds) },
    );
  };

  const create = (fields: Partial<StoredTask> = {}): StoredTask => {
    const id = `t${String(nextId++).padStart(5, "0")}`;
    const task: StoredTask = {
      task_id: id,
      title: fields.title ?? `Task ${id}`,
      done: fields.done ?? false,
      assignee_email: fields.assignee_email ?? null,
      modified_at: tick(),
    };
    tasks.set(id, task);
    return task;
  };

  const update = (id: string, fields: Partial<Omit<StoredTask, "task_id" | "modified_at">>) => {
    const task = tasks.get(id);
    if (task === undefined) return undefined;
    Object.assign(task, fields, { modified_at: tick() });
    return task;
  };

  const remove = (id: string) => {
    if (!tasks.delete(id)) return false;
    deletions.set(id, tick());
    return true;
  };

  const handlers = [
    http.get(`${baseUrl}/v1/tasks/deleted`, ({ request }) => {
      const denied = guard(request);
      if (denied) return denied;
      const since = Number(new URL(request.url).searchParams.get("since") ?? 0);
      return json({ ids: [...deletions].filter(([, at]) => at >= since).map(([id]) => id) });
    }),
    http.get(`${baseUrl}/v1/tasks`, ({ request }) => {
      const denied = guard(request);
      if (denied) return denied;
      const query = new URL(request.url).searchParams;
      const limit = Number(query.get("limit") ?? 100);
      if (!Number.isInteger(limit) || limit < 1 || limit > 200) return json({ error: "limit must be 1..200" }, 422);
      const after = query.get("page_token");
      const since = query.has("modified_since") ? Number(query.get("modified_since")) : undefined;
      const matching = sortedIds()
        .filter((id) => after === null || id > after)
        .map((id) => tasks.get(id)!)
        .filter((task) => since === undefined || task.modified_at >= since);
      const page = matching.slice(0, limit);
      return json({ items: page, ...(matching.length > limit ? { next_page_token: page.at(-1)!.task_id } : {}) });
    }),
    http.get(`${baseUrl}/v1/tasks/:id`, ({ request, params }) => {
      const denied = guard(request);
      if (denied) return denied;
      const task = tasks.get(String(params.id));
      return task === undefined ? json({ error: "not found" }, 404) : json(task);
    }),
    http.post(`${baseUrl}/v1/tasks`, async ({ request }) => {
      const denied = guard(request);
      if (denied) return denied;
      const fields = (await request.json()) as Partial<StoredTask>;
      if (typeof fields.title !== "string" || fields.title === "") return json({ error: "title is required" }, 422);
      return json(create(fields), 201);
    }),
    http.patch(`${baseUrl}/v1/tasks/:id`, async ({ request, params }) => {
      const denied = guard(request);
      if (denied) return denied;
      const { task_id: _id, modified_at: _at, ...fields } = (await request.json()) as Partial<StoredTask>;
      const task = update(String(params.id), fields);
      return task === undefined ? json({ error: "not found" }, 404) : json(task);
    }),
    http.delete(`${baseUrl}/v1/tasks/:id`, ({ request, params }) => {
      const denied = guard(request);
      if (denied) return denied;
      return remove(String(params.id)) ? new HttpResponse(null, { status: 204 }) : json({ error: "not found" }, 404);
    }),
  ];

  return {
    baseUrl,
    apiKey,
    handlers,
    tasks,
    now: () => now,
    create,
    update,
    remove,
    /** Serves this status to the next request (with Retry-After for a 429). */
    failNext: (status: number, retryAfterSeconds?: number) =>
      failures.push({ status, ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}) }),
    /** A signed webhook delivery, as Taskboard would POST it now. */
    webhook: (secret: string, events: ReadonlyArray<{ event_id: string; type: string; task_id: string }>) => {
      const rawBody = JSON.stringify({ events: events.map((e) => ({ ...e, occurred_at: now })) });
      return {
        method: "POST",
        url: "https://tandem.test/webhooks/taskboard/connection",
        headers: new Headers({
          "content-type": "application/json",
          "x-taskboard-timestamp": String(now),
          "x-taskboard-signature": taskboardSignature(secret, now, rawBody),
        }),
        rawBody,
      };
    },
    reset: () => {
      tasks.clear();
      deletions.clear();
      failures.length = 0;
      now = Date.UTC(2026, 0, 1);
      nextId = 1;
    },
  };
};

export type TaskboardFake = ReturnType<typeof createTaskboardFake>;
