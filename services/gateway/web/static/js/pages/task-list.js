// Task history: every task, newest first, filtered by status, model and provider, a page at a
// time. Filters and the page live in the URL, so a filtered view can be bookmarked.

import { api } from "../api.js";
import { append, h, replace } from "../dom.js";
import { field, select } from "../forms.js";
import { money, statusBadge, truncate, when } from "../format.js";
import { mediaPreview } from "../media.js";
import { navigate } from "../router.js";
import { STATUSES, fromDocument, shownResults } from "../tasks.js";
import { button, errorBox, loading, pageHeader, table } from "../ui.js";

const PAGE_SIZE = 25;

export async function render(root, { query, signal }) {
  const filters = {
    status: query.get("status") || "",
    model: query.get("model") || "",
    provider: query.get("provider") || "",
    shot_id: query.get("shot_id") || "",
  };
  // The API pages forward only: the tokens of the pages before this one ride along in the URL
  // ("0" for the first page) so "Newer" can go back.
  const trail = query.getAll("trail");
  const pageToken = query.get("page") || "";

  const [providers, models] = await Promise.all([
    api("GET", "/admin/providers", { signal }),
    api("GET", "/admin/models", { signal }),
  ]);
  const statusSelect = select([{ value: "", label: "Any status" }, ...STATUSES], { value: filters.status, name: "status" });
  const providerSelect = select([{ value: "", label: "Any provider" }, ...providers.providers.map((p) => ({ value: p.slug, label: p.name }))], { value: filters.provider, name: "provider" });
  const modelSelect = select([{ value: "", label: "Any model" }, ...models.models.map((m) => ({ value: m.slug, label: `${m.name} (${m.slug})` }))], { value: filters.model, name: "model" });
  const apply = (event) => {
    event.preventDefault();
    navigate("/tasks", { status: statusSelect.value, model: modelSelect.value, provider: providerSelect.value, shot_id: filters.shot_id });
  };
  const filterForm = h(
    "form",
    { class: "filters", onsubmit: apply, "aria-label": "Filter tasks" },
    field({ label: "Status", control: statusSelect }),
    field({ label: "Provider", control: providerSelect }),
    field({ label: "Model", control: modelSelect }),
    h("div", { class: "actions" }, button("Filter", null, { tone: "primary", type: "submit" }), button("Clear", () => navigate("/tasks"), { tone: "subtle" })),
  );

  const listing = h("div", {}, loading("Loading tasks…"));
  append(
    root,
    pageHeader("Task history", { subtitle: filters.shot_id ? `Tasks of shot ${filters.shot_id}` : "Every task, newest first." }),
    h("section", { class: "card" }, filterForm, listing),
  );

  try {
    const page = await api("GET", "/admin/tasks", {
      signal,
      query: { ...filters, page_size: PAGE_SIZE, page_token: pageToken },
    });
    const tasks = page.tasks.map(fromDocument);
    const pager = h(
      "nav",
      { class: "pager", "aria-label": "Pages" },
      button("← Newer", () => navigate("/tasks", { ...filters, page: trail.at(-1) === "0" ? "" : trail.at(-1), trail: trail.slice(0, -1) }), { disabled: !trail.length }),
      h("span", { class: "muted" }, `Page ${trail.length + 1}`),
      button("Older →", () => navigate("/tasks", { ...filters, page: page.nextPageToken, trail: [...trail, pageToken || "0"] }), { disabled: !page.nextPageToken }),
    );
    replace(
      listing,
      table({
        caption: "Tasks",
        emptyText: Object.values(filters).some(Boolean) ? "No task matches these filters." : "No tasks yet. Generate something first.",
        rows: tasks,
        rowAttrs: (t) => ({ dataset: { taskId: t.id } }),
        columns: [
          { label: "Created", render: (t) => when(t.createdAt) },
          { label: "Status", render: (t) => statusBadge(t.status) },
          { label: "Task", render: (t) => h("a", { href: `#/tasks/${encodeURIComponent(t.id)}` }, h("code", {}, t.id.slice(0, 12))) },
          { label: "Model", render: (t) => t.model },
          { label: "Provider", render: (t) => t.provider },
          { label: "Prompt", render: (t) => truncate(t.prompt, 60), class: "wide" },
          { label: "Cost", render: (t) => money(t.chargedUsd ?? t.quotedUsd), class: "number" },
          { label: "Result", render: (t) => (shownResults(t)[0] ? mediaPreview(t.results[0], { compact: true, label: `Result of task ${t.id}` }) : "—") },
        ],
      }),
      pager,
    );
  } catch (error) {
    if (error.name !== "AbortError") replace(listing, errorBox(error));
  }
}
