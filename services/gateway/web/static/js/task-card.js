// A task as it runs: status, progress, time so far, then its results (or its error). Used after
// submitting on the Generate page and in a shot's panel; it follows the task live.

import { h, replace } from "./dom.js";
import { followTask } from "./follow.js";
import { elapsed, money, progressBar, statusBadge } from "./format.js";
import { mediaFigure } from "./media.js";
import { isRunning, shownResults } from "./tasks.js";

/** The card's content for one state of the task. */
export function taskSummary(task) {
  const running = isRunning(task);
  return [
    h(
      "div",
      { class: "task-head" },
      statusBadge(task.status),
      h("a", { href: `#/tasks/${encodeURIComponent(task.id)}`, class: "task-link" }, "Task ", h("code", {}, task.id.slice(0, 12))),
      h("span", { class: "muted" }, `${task.model || ""}${task.provider ? ` · ${task.provider}` : ""}`),
      h("span", { class: "muted" }, elapsed(task.createdAt, running ? null : task.completedAt || task.updatedAt)),
      h("span", { class: "muted" }, task.chargedUsd ? `charged ${money(task.chargedUsd)}` : `quoted ${money(task.quotedUsd)}`),
    ),
    running ? progressBar(task.progress, `Progress of task ${task.id}`) : null,
    task.error ? h("p", { class: "notice error", role: "alert" }, h("strong", {}, task.error.message || "Failed"), h("code", { class: "code" }, task.error.code)) : null,
    // While it runs, results may still point at the provider: they are shown once stored.
    running && task.results?.length ? h("p", { class: "muted" }, `${task.results.length} result(s) made, storing…`) : null,
    shownResults(task).length
      ? h(
          "div",
          { class: "results" },
          shownResults(task).map((result, index) => mediaFigure(result, { label: `Result ${index + 1} of task ${task.id}: ${task.prompt}`.slice(0, 200), caption: `#${index + 1}` })),
        )
      : null,
    task.status === "SUCCESS" && !task.results?.length ? h("p", { class: "muted" }, "Finished without results.") : null,
  ];
}

/**
 * A card that shows `task` and follows it until it ends; `onChange(task)` sees every state
 * (a shot reloads its frames when its task ends).
 */
export function liveTaskCard(task, { signal, onChange = () => {} } = {}) {
  const card = h("article", { class: "task-card", "aria-live": "polite", dataset: { taskId: task.id, status: task.status } });
  const draw = (state) => {
    card.dataset.status = state.status;
    replace(card, taskSummary(state));
  };
  draw(task);
  if (isRunning(task)) {
    const seen = (state) => {
      draw(state);
      onChange(state);
    };
    followTask(task.id, seen, signal).catch((error) => {
      card.append(h("p", { class: "notice error", role: "alert" }, `Live progress stopped: ${error.message}`));
    });
  } else {
    onChange(task);
  }
  return card;
}
