// Task detail: everything known about one task, its results playable, its error, live progress
// while it runs, its webhook deliveries and error-log entries; cancel and delete.

import { api } from "../api.js";
import { append, h, replace } from "../dom.js";
import { followTask } from "../follow.js";
import { bytes, elapsed, money, progressBar, statusBadge, when } from "../format.js";
import { mediaFigure } from "../media.js";
import { fromDocument, isRunning, shownResults } from "../tasks.js";
import { busy, button, confirmed, copyable, details, empty, errorBox, loading, pageHeader, section, table, toast } from "../ui.js";

export async function render(root, { params: [taskId], signal }) {
  const path = `/admin/tasks/${encodeURIComponent(taskId)}`;
  const actions = h("div", { class: "actions" });
  const actionError = h("div");
  const body = h("div", { class: "detail-grid" });
  const extras = h("div", {}, loading("Loading deliveries and error log…"));
  append(
    root,
    pageHeader(`Task ${taskId.slice(0, 12)}`, { crumbs: [["Task history", "#/tasks"], [taskId]], actions: [actions] }),
    actionError,
    body,
    extras,
  );

  let task = fromDocument(await api("GET", path, { signal }));

  function draw() {
    replace(actions, actionButtons());
    replace(
      body,
      section(
        "Status",
        h("p", { class: "status-line" }, statusBadge(task.status), task.deletedAt ? h("span", { class: "badge warning" }, "DELETED") : null),
        isRunning(task) ? progressBar(task.progress, "Task progress") : null,
        task.error
          ? h("div", { class: "notice error", role: "alert" }, h("p", {}, h("strong", {}, task.error.message || "Failed")), h("p", {}, "Code ", h("code", {}, task.error.code)))
          : null,
        details([
          ["Created", when(task.createdAt)],
          ["Updated", when(task.updatedAt)],
          ["Completed", task.completedAt ? when(task.completedAt) : "—"],
          ["Took", task.completedAt ? elapsed(task.createdAt, task.completedAt) : isRunning(task) ? `${elapsed(task.createdAt)} so far` : "—"],
          ["Deleted", task.deletedAt ? when(task.deletedAt) : undefined],
        ]),
      ),
      section(
        "Results",
        shownResults(task).length
          ? h(
              "div",
              { class: "results large" },
              shownResults(task).map((r, i) =>
                h(
                  "div",
                  { class: "result-detail" },
                  mediaFigure(r, { label: `Result ${i + 1}: ${task.prompt}`.slice(0, 200), caption: `#${i + 1}` }),
                  details([
                    ["Type", r.type],
                    ["Content type", r.contentType || "—"],
                    ["Size", bytes(r.size)],
                    ["Stored", r.stored ? "in object storage" : "provider's URL"],
                    ["SHA-256", r.sha256 ? h("code", { class: "wrap" }, r.sha256) : "—"],
                    ["Original URL", r.originalUrl ? h("a", { href: r.originalUrl, target: "_blank", rel: "noopener noreferrer", class: "wrap" }, r.originalUrl) : "—"],
                  ]),
                ),
              ),
            )
          : empty(isRunning(task) ? "Results appear here when the task finishes." : "No results."),
      ),
      section(
        "Request",
        details([
          ["Task id", copyable(task.id)],
          ["Model", task.model],
          ["Provider", h("a", { href: `#/providers/${encodeURIComponent(task.provider)}` }, task.provider)],
          ["Output type", task.outputType],
          ["Number of outputs", String(task.numberOfOutputs)],
          ["Owner", task.owner || "—"],
          ["Shot", task.shotId ? h("a", { href: `#/studio/shots/${encodeURIComponent(task.shotId)}` }, "Open the shot") : "—"],
          ["Provider task id", task.providerTaskId ? copyable(task.providerTaskId) : "—"],
        ]),
        h("h3", {}, "Prompt"),
        h("p", { class: "prompt-text" }, task.prompt || h("span", { class: "muted" }, "(none)")),
        h("h3", {}, "Parameters"),
        table({
          rows: Object.entries(task.parameters),
          emptyText: "No parameters.",
          columns: [
            { label: "Parameter", render: ([k]) => h("code", {}, k) },
            { label: "Value", render: ([, v]) => (typeof v === "object" ? JSON.stringify(v) : String(v)) },
          ],
        }),
      ),
      section(
        "Cost",
        details([
          ["Quoted", money(task.quotedUsd)],
          ["Charged", task.chargedUsd ? money(task.chargedUsd) : isRunning(task) ? "not yet" : "—"],
          ["Price", task.priceDisplay || "—"],
        ]),
      ),
    );
  }

  function actionButtons() {
    const list = [];
    if (isRunning(task)) {
      const cancel = button("Cancel task", () =>
        busy(cancel, async () => {
          task = fromDocument(await api("POST", `${path}/cancel`, { signal, body: { reason: "cancelled by an administrator" } }));
          toast("Task cancelled");
          draw();
        }, actionError),
        { tone: "warning" },
      );
      list.push(cancel);
    }
    if (!task.deletedAt) {
      const remove = button("Delete task", () => {
        if (!confirmed("Delete this task? It leaves task lists; its files and any Studio frames stay.")) return;
        busy(remove, async () => {
          task = fromDocument(await api("DELETE", path, { signal }));
          toast("Task deleted");
          draw();
        }, actionError);
      }, { tone: "danger" });
      list.push(remove);
    }
    return list;
  }

  async function loadExtras() {
    const [deliveries, errors] = await Promise.allSettled([
      api("GET", `${path}/webhooks`, { signal }),
      api("GET", "/admin/errors", { signal, query: { task_id: taskId, page_size: 50 } }),
    ]);
    replace(
      extras,
      section(
        "Error log",
        errors.status === "fulfilled"
          ? table({
              rows: errors.value.errors,
              emptyText: "No errors recorded for this task.",
              columns: [
                { label: "When", render: (e) => when(e.at) },
                { label: "Kind", render: (e) => e.kind },
                { label: "Stage", render: (e) => e.stage },
                { label: "Code", render: (e) => h("code", {}, e.code) },
                { label: "Message", render: (e) => e.message, class: "wide" },
                { label: "Retryable", render: (e) => (e.retryable ? "yes" : "no") },
              ],
            })
          : errorBox(errors.reason),
      ),
      section(
        "Webhook deliveries",
        deliveries.status === "fulfilled"
          ? table({
              rows: deliveries.value.deliveries,
              emptyText: "No webhook for this task.",
              columns: [
                { label: "Event", render: (d) => d.eventType },
                { label: "URL", render: (d) => h("span", { class: "wrap" }, d.url) },
                { label: "Status", render: (d) => d.status },
                { label: "Attempts", render: (d) => String(d.attempts), class: "number" },
                { label: "Last answer", render: (d) => d.lastError || (d.lastStatusCode ? String(d.lastStatusCode) : "—") },
                { label: "Created", render: (d) => when(d.createdAt) },
              ],
            })
          : errorBox(deliveries.reason),
      ),
    );
  }

  draw();
  loadExtras().catch(() => {});
  if (isRunning(task)) {
    followTask(taskId, (state) => {
      task = { ...state, owner: state.owner ?? task.owner };
      draw();
      if (!isRunning(task)) loadExtras().catch(() => {});
    }, signal).catch((error) => replace(actionError, errorBox(error)));
  }
}
