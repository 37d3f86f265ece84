// The operator dashboard: plain DOM, no dependencies. Every value from the API goes into the
// page as a text node (never as markup), and the only secret it holds is the key typed in.

const KEY_STORAGE = "tandem.apiKey";
const REFRESH_MS = 10_000;
const FINAL_JOB_STATUSES = new Set(["completed", "dead", "cancelled"]);
const SYNC_MODES = ["delta", "full", "reconcile"];

/** A tRPC error as the server formats it: message, code, and extra data (`jobId` for already_running). */
class ApiError extends Error {
  constructor(message, code, data) {
    super(message);
    this.code = code;
    this.data = data ?? {};
  }
}

const state = {
  connections: [],
  selectedId: null,
  status: null,
  /** The job whose progress streams into the live panel: `{ jobId, source, progress, label }`. */
  watching: null,
  refreshing: null,
  /** A refresh asked for while one was loading: its data may predate what prompted it. */
  refreshAgain: false,
};

// ---- API -------------------------------------------------------------------------------------

const apiKey = () => sessionStorage.getItem(KEY_STORAGE);

/** One tRPC call over HTTP (no batching): queries are GET with `?input=`, mutations POST a JSON body. */
const call = async (type, path, input) => {
  const headers = { authorization: `Bearer ${apiKey() ?? ""}` };
  const response =
    type === "query"
      ? await fetch(
          `/trpc/${path}${input === undefined ? "" : `?input=${encodeURIComponent(JSON.stringify(input))}`}`,
          { headers },
        )
      : await fetch(`/trpc/${path}`, {
          method: "POST",
          headers: { ...headers, "content-type": "application/json" },
          body: JSON.stringify(input ?? {}),
        });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`the server answered HTTP ${response.status}`, "HTTP_ERROR");
  }
  if (body.error !== undefined) {
    throw new ApiError(body.error.message ?? "request failed", body.error.data?.code, body.error.data);
  }
  return body.result.data;
};

const query = (path, input) => call("query", path, input);
const mutate = (path, input) => call("mutation", path, input);

/**
 * `jobs.watch` over server-sent events. EventSource cannot set headers, so the key travels as
 * tRPC's connection params in the query string. Unnamed events carry a progress value as JSON;
 * `serialized-error` carries an error shape; `return` says the stream is over.
 */
const watchJob = (jobId, handlers) => {
  const params = new URLSearchParams({
    input: JSON.stringify({ id: jobId }),
    connectionParams: JSON.stringify({ authorization: `Bearer ${apiKey() ?? ""}` }),
  });
  const source = new EventSource(`/trpc/jobs.watch?${params}`);
  source.addEventListener("message", (event) => handlers.onProgress(JSON.parse(event.data)));
  source.addEventListener("serialized-error", (event) => {
    source.close();
    const shape = JSON.parse(event.data) ?? {};
    handlers.onError(new ApiError(shape.message ?? "subscription failed", shape.data?.code, shape.data));
  });
  source.addEventListener("return", () => {
    source.close();
    handlers.onEnd();
  });
  return source;
};

// ---- DOM -------------------------------------------------------------------------------------

const byId = (id) => document.getElementById(id);

/** An element with attributes, listeners (`onclick`...) and children; strings become text nodes. */
const el = (tag, props, ...children) => {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
};

const fill = (container, ...children) =>
  container.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));

const empty = (text) => el("p", { class: "empty" }, text);

const failure = (error) => el("p", { class: "error" }, error instanceof Error ? error.message : String(error));

const table = (headers, rows, emptyText) =>
  rows.length === 0
    ? empty(emptyText)
    : el(
        "table",
        null,
        el(
          "thead",
          null,
          el(
            "tr",
            null,
            headers.map((h) => el("th", { scope: "col" }, h)),
          ),
        ),
        el("tbody", null, rows),
      );

const badge = (status) => el("span", { class: `badge badge-${String(status).replace(/[^a-z_]/g, "")}` }, status);

const button = (label, onclick, props) => el("button", { type: "button", onclick, ...props }, label);

let noticeTimer;
const notice = (text, kind = "info") => {
  const node = byId("notice");
  node.textContent = text;
  node.className = `notice notice-${kind}`;
  node.hidden = false;
  clearTimeout(noticeTimer);
  if (kind !== "error") noticeTimer = setTimeout(() => (node.hidden = true), 8_000);
};

// ---- Formatting ------------------------------------------------------------------------------

const seconds = (s) => {
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3_600) return `${Math.round(s / 60)} min`;
  if (s < 86_400) return `${(s / 3_600).toFixed(1)} h`;
  return `${(s / 86_400).toFixed(1)} d`;
};

/** `5 min ago` or `in 14 min`, with the exact time as a tooltip. */
const relative = (iso) => {
  if (iso === null || iso === undefined) return el("span", { class: "muted" }, "—");
  const delta = (Date.parse(iso) - Date.now()) / 1000;
  const text = Math.abs(delta) < 1 ? "now" : delta < 0 ? `${seconds(-delta)} ago` : `in ${seconds(delta)}`;
  return el("time", { datetime: iso, title: new Date(iso).toLocaleString() }, text);
};

const connectionName = (id) => state.connections.find((c) => c.id === id)?.name ?? (id ? id.slice(0, 8) : "—");

/** A sync job's entity and mode, from its payload. */
const jobLabel = (job) => {
  const p = job.payload ?? {};
  return typeof p.entity === "string" ? `${job.kind} · ${p.entity}${p.mode ? ` · ${p.mode}` : ""}` : job.kind;
};

// ---- Sections --------------------------------------------------------------------------------

const renderConnections = () => {
  const rows = state.connections.map((c) =>
    el(
      "tr",
      { class: c.id === state.selectedId ? "selected" : null, "data-connection": c.id },
      el("td", null, c.name),
      el("td", null, c.connector),
      el("td", null, badge(c.status)),
      el("td", null, c.paused ? badge("paused") : "running"),
      el("td", null, relative(c.createdAt)),
      el(
        "td",
        null,
        c.id === state.selectedId
          ? el("span", { class: "muted" }, "shown")
          : button("Show", () => selectConnection(c.id), { class: "secondary" }),
      ),
    ),
  );
  fill(
    byId("connections"),
    table(["Name", "Connector", "Status", "Schedules", "Created", ""], rows, "No connections yet."),
  );
};

const runCell = (run) => {
  if (run === null) return el("span", { class: "muted" }, "never");
  return el(
    "div",
    { class: "run" },
    el("div", null, badge(run.status), " ", relative(run.finishedAt ?? run.startedAt)),
    el(
      "div",
      { class: "counts" },
      `${run.created} created · ${run.updated} updated · ${run.deleted} deleted`,
      run.itemErrors > 0 ? ` · ${run.itemErrors} errors` : "",
    ),
    run.errorMessage ? el("div", { class: "error small" }, run.errorMessage) : null,
  );
};

const renderStatus = () => {
  const section = byId("connection");
  const status = state.status;
  const connection = state.connections.find((c) => c.id === state.selectedId);
  if (connection === undefined || status === null) {
    section.hidden = true;
    return;
  }
  section.hidden = false;
  byId("status-title").textContent = `Sync status: ${connection.name}`;
  const toggle = byId("pause-toggle");
  toggle.textContent = status.paused ? "Resume schedules" : "Pause schedules";
  toggle.dataset.action = status.paused ? "resume" : "pause";

  const last = status.lastSync;
  fill(
    byId("status-summary"),
    el("div", null, el("span", { class: "label" }, "Connection"), badge(connection.status)),
    el("div", null, el("span", { class: "label" }, "Schedules"), status.paused ? badge("paused") : "running"),
    el(
      "div",
      null,
      el("span", { class: "label" }, "Last sync"),
      el(
        "span",
        null,
        last === null ? "never" : [`${last.entity} ${last.mode} `, badge(last.status), " ", relative(last.at)],
      ),
    ),
    el("div", null, el("span", { class: "label" }, "Pending changes"), String(status.pendingChanges)),
    el("div", null, el("span", { class: "label" }, "Failed syncs (24 h)"), String(status.failedSyncs)),
  );

  const rows = status.entities.map((e) =>
    el(
      "tr",
      { "data-entity": e.entity },
      el("th", { scope: "row" }, e.entity),
      SYNC_MODES.map((mode) => el("td", { "data-mode": mode }, runCell(e.lastRuns[mode]))),
      el(
        "td",
        { class: "freshness" },
        e.freshnessSeconds === null ? el("span", { class: "muted" }, "never synced") : seconds(e.freshnessSeconds),
      ),
      el(
        "td",
        null,
        el("div", null, "delta ", relative(e.nextRuns.delta)),
        el("div", null, "reconcile ", relative(e.nextRuns.reconcile)),
      ),
      el("td", null, String(e.pendingChanges), e.failedRecords > 0 ? ` (${e.failedRecords} failed)` : ""),
      el(
        "td",
        { class: "actions" },
        SYNC_MODES.map((mode) =>
          button(mode[0].toUpperCase() + mode.slice(1), () => triggerSync(e.entity, mode), {
            "data-sync": mode,
            title: `Run a ${mode} sync of ${e.entity} now`,
          }),
        ),
      ),
    ),
  );
  fill(
    byId("entities"),
    table(
      ["Entity", "Last delta", "Last full", "Last reconcile", "Freshness", "Next runs", "Pending", "Sync now"],
      rows,
      "This connector has no entities.",
    ),
  );
};

const renderLive = () => {
  const section = byId("live");
  const w = state.watching;
  if (w === null) {
    section.hidden = true;
    return;
  }
  section.hidden = false;
  const p = w.progress;
  const figure = (label, value) => el("div", null, el("span", { class: "label" }, label), String(value));
  fill(
    byId("live-job"),
    el("p", null, w.label, " ", el("code", null, w.jobId)),
    p === null
      ? el("p", { class: "muted" }, "Waiting for progress…")
      : [
          el(
            "div",
            { class: "summary", "data-job-status": p.status },
            el(
              "div",
              null,
              el("span", { class: "label" }, "Status"),
              el("span", null, badge(p.status), p.phase !== p.status ? ` (${p.phase})` : ""),
            ),
            figure("Attempt", `${p.attempt} of ${p.maxAttempts}`),
            figure("Pages", p.pages),
            figure("Processed", p.processed),
            figure("Created", p.created),
            figure("Updated", p.updated),
            figure("Unchanged", p.unchanged),
            figure("Deleted", p.deleted),
            figure("Errors", p.errors),
            figure("Records/s", Math.round(p.recordsPerSecond)),
          ),
          el(
            "p",
            { class: "muted" },
            "Started ",
            relative(p.startedAt),
            p.finishedAt ? [", finished ", relative(p.finishedAt)] : "",
          ),
          p.error ? el("p", { class: "error" }, p.error) : null,
        ],
  );
};

const renderJobs = (jobs) => {
  const rows = jobs.map((j) =>
    el(
      "tr",
      { "data-job": j.id },
      el("td", null, relative(j.createdAt)),
      el("td", null, jobLabel(j)),
      el("td", null, badge(j.status)),
      el("td", null, `${j.attempts}/${j.maxAttempts}`),
      el("td", null, relative(j.finishedAt)),
      el("td", { class: "error small" }, j.lastError ? `${j.lastError.tag}: ${j.lastError.message}` : ""),
      el(
        "td",
        null,
        button(FINAL_JOB_STATUSES.has(j.status) ? "Details" : "Watch", () => startWatching(j.id, jobLabel(j)), {
          class: "secondary",
        }),
      ),
    ),
  );
  fill(byId("jobs"), table(["Created", "Job", "Status", "Attempts", "Finished", "Last error", ""], rows, "No jobs."));
};

const renderConflicts = (page) => {
  const rows = page.items.map((c) =>
    el(
      "tr",
      null,
      el("td", null, relative(c.createdAt)),
      el("td", null, connectionName(c.connectionId)),
      el("td", null, c.entity),
      el("td", null, el("code", null, c.externalId)),
      el("td", null, c.fields.join(", ")),
      el("td", null, c.policy),
      el("td", null, c.reason ?? ""),
    ),
  );
  fill(
    byId("conflicts"),
    table(["Opened", "Connection", "Entity", "Record", "Fields", "Policy", "Reason"], rows, "No open conflicts."),
  );
};

const renderDeadLetters = (jobs) => {
  const rows = jobs.map((j) =>
    el(
      "tr",
      { "data-dead-letter": j.id },
      el("td", null, relative(j.finishedAt ?? j.createdAt)),
      el("td", null, connectionName(j.connectionId)),
      el("td", null, jobLabel(j)),
      // `deadLetters.list` replaces the attempt count with the attempts themselves.
      el(
        "td",
        {
          title: Array.isArray(j.attempts)
            ? j.attempts
                .map((a) => `#${a.attempt} ${a.outcome}${a.error ? `: ${a.error.tag}: ${a.error.message}` : ""}`)
                .join("\n")
            : null,
        },
        String(Array.isArray(j.attempts) ? j.attempts.length : j.attempts),
      ),
      el("td", { class: "error small" }, j.lastError ? `${j.lastError.tag}: ${j.lastError.message}` : ""),
      el(
        "td",
        { class: "actions" },
        button("Retry", () => deadLetterAction("retry", j)),
        button("Discard", () => deadLetterAction("discard", j), { class: "danger" }),
      ),
    ),
  );
  fill(
    byId("dead-letters"),
    table(["Failed", "Connection", "Job", "Attempts", "Last error", ""], rows, "No dead letters."),
  );
};

const renderAlerts = (page) => {
  const rows = page.items.map((a) =>
    el(
      "tr",
      null,
      el("td", null, relative(a.openedAt)),
      el("td", null, a.ruleName),
      el("td", null, a.kind),
      el("td", null, a.connectionId ? connectionName(a.connectionId) : a.subject),
      el("td", null, a.entity ?? ""),
      el(
        "td",
        { class: "small" },
        Object.entries(a.details ?? {})
          .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`)
          .join(" · "),
      ),
    ),
  );
  fill(byId("alerts"), table(["Since", "Rule", "Kind", "Subject", "Entity", "Details"], rows, "No alerts firing."));
};

// ---- Loading ---------------------------------------------------------------------------------

/** A key the server refuses ends the session; the dashboard needs a tenant key, not the admin key. */
const handleAuthError = (error) => {
  if (!(error instanceof ApiError)) return false;
  if (error.code === "UNAUTHORIZED") {
    signOut();
    notice("That API key was refused. Enter a valid tenant key.", "error");
    return true;
  }
  if (error.code === "FORBIDDEN") {
    signOut();
    notice("The dashboard shows one tenant: use a tenant API key, not the admin key.", "error");
    return true;
  }
  return false;
};

/** Loads one section; its failure shows in the section, an auth failure ends the session. */
const section = async (id, load, render) => {
  try {
    render(await load());
  } catch (error) {
    if (!handleAuthError(error)) fill(byId(id), failure(error));
  }
};

const refresh = () => {
  if (apiKey() === null) return Promise.resolve();
  if (state.refreshing !== null) {
    state.refreshAgain = true;
    return state.refreshing;
  }
  state.refreshing = (async () => {
    try {
      try {
        state.connections = await query("connections.list");
      } catch (error) {
        if (!handleAuthError(error)) fill(byId("connections"), failure(error));
        return;
      }
      if (!state.connections.some((c) => c.id === state.selectedId)) {
        state.selectedId = state.connections[0]?.id ?? null;
        state.status = null;
      }
      renderConnections();
      const connectionId = state.selectedId ?? undefined;
      await Promise.all([
        connectionId === undefined
          ? renderStatus()
          : section(
              "entities",
              () => query("sync.status", { connectionId }),
              (status) => {
                state.status = status;
                renderStatus();
              },
            ),
        section("jobs", () => query("jobs.list", { connectionId, limit: 15 }), renderJobs),
        section(
          "conflicts",
          () => query("conflicts.list", { status: "open", connectionId, limit: 50 }),
          renderConflicts,
        ),
        section("dead-letters", () => query("deadLetters.list", { limit: 50 }), renderDeadLetters),
        section("alerts", () => query("alerts.list", { status: "firing", limit: 50 }), renderAlerts),
      ]);
    } finally {
      state.refreshing = null;
      if (state.refreshAgain) {
        state.refreshAgain = false;
        refresh();
      }
    }
  })();
  return state.refreshing;
};

// ---- Actions ---------------------------------------------------------------------------------

const selectConnection = (id) => {
  state.selectedId = id;
  state.status = null;
  renderConnections();
  refresh();
};

const stopWatching = () => {
  state.watching?.source?.close();
  state.watching = null;
};

const startWatching = (jobId, label) => {
  stopWatching();
  const watching = { jobId, label, progress: null, source: null };
  state.watching = watching;
  watching.source = watchJob(jobId, {
    onProgress: (progress) => {
      if (state.watching !== watching) return;
      watching.progress = progress;
      renderLive();
      if (FINAL_JOB_STATUSES.has(progress.status)) {
        watching.source.close();
        refresh();
      }
    },
    onError: (error) => {
      if (state.watching !== watching || handleAuthError(error)) return;
      notice(`Cannot follow job ${jobId}: ${error.message}`, "error");
    },
    onEnd: () => {},
  });
  renderLive();
};

const triggerSync = async (entity, mode) => {
  const connectionId = state.selectedId;
  try {
    const { jobId } = await mutate("sync.trigger", { connectionId, entity, mode });
    notice(`Queued a ${mode} sync of ${entity}.`);
    startWatching(jobId, `${mode} sync of ${entity}`);
  } catch (error) {
    if (handleAuthError(error)) return;
    if (error instanceof ApiError && error.code === "CONFLICT" && typeof error.data.jobId === "string") {
      notice(`A sync of ${entity} is already running; following it instead.`, "warning");
      startWatching(error.data.jobId, `sync of ${entity} (already running)`);
    } else {
      notice(`Could not start the ${mode} sync of ${entity}: ${error.message}`, "error");
    }
  }
  refresh();
};

const togglePause = async () => {
  const connectionId = state.selectedId;
  const action = byId("pause-toggle").dataset.action;
  if (connectionId === null || (action !== "pause" && action !== "resume")) return;
  try {
    await mutate(`sync.${action}`, { connectionId });
    notice(action === "pause" ? "Schedules paused." : "Schedules resumed.");
  } catch (error) {
    if (!handleAuthError(error)) notice(`Could not ${action}: ${error.message}`, "error");
  }
  refresh();
};

const deadLetterAction = async (action, job) => {
  if (action === "discard" && !confirm(`Discard ${jobLabel(job)}? It will not run again.`)) return;
  try {
    await mutate(`deadLetters.${action}`, { id: job.id });
    notice(action === "retry" ? `Queued ${jobLabel(job)} again.` : `Discarded ${jobLabel(job)}.`);
  } catch (error) {
    if (!handleAuthError(error)) notice(`Could not ${action} the job: ${error.message}`, "error");
  }
  refresh();
};

// ---- Session ---------------------------------------------------------------------------------

let refreshTimer;

const signIn = () => {
  byId("key-form").hidden = true;
  byId("session").hidden = false;
  byId("main").hidden = false;
  byId("notice").hidden = true;
  clearInterval(refreshTimer);
  refreshTimer = setInterval(() => {
    if (document.visibilityState === "visible") refresh();
  }, REFRESH_MS);
  refresh();
};

function signOut() {
  sessionStorage.removeItem(KEY_STORAGE);
  clearInterval(refreshTimer);
  stopWatching();
  Object.assign(state, { connections: [], selectedId: null, status: null });
  byId("main").hidden = true;
  byId("session").hidden = true;
  byId("key-form").hidden = false;
  byId("api-key").value = "";
  byId("api-key").focus();
}

byId("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = byId("api-key").value.trim();
  if (key === "") return;
  sessionStorage.setItem(KEY_STORAGE, key);
  byId("api-key").value = "";
  signIn();
});
byId("forget-key").addEventListener("click", () => {
  signOut();
  notice("Key forgotten.");
});
byId("refresh").addEventListener("click", () => refresh());
byId("pause-toggle").addEventListener("click", () => togglePause());

if (apiKey() === null) signOut();
else signIn();
