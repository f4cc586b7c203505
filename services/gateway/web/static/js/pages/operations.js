// Operations: open and past alerts, error counts of the last day, and the error log.

import { api } from "../api.js";
import { append, h, replace } from "../dom.js";
import { field, select } from "../forms.js";
import { when } from "../format.js";
import { navigate } from "../router.js";
import { button, errorBox, loading, pageHeader, section, table } from "../ui.js";

export async function render(root, { query, signal }) {
  const alertStatus = query.get("alerts") ?? "open";
  const errorProvider = query.get("provider") || "";
  const errorKind = query.get("kind") || "";

  const alertsSlot = h("div", {}, loading("Loading alerts…"));
  const countsSlot = h("div", {}, loading("Loading counts…"));
  const errorsSlot = h("div", {}, loading("Loading the error log…"));

  const go = (changes) => navigate("/operations", { alerts: alertStatus, provider: errorProvider, kind: errorKind, ...changes });
  // Filters apply on "Show", not on change: keyboard users step through a select's options.
  const alertFilter = select([{ value: "open", label: "Open" }, { value: "resolved", label: "Resolved" }, { value: "", label: "All" }], { value: alertStatus });
  const providerFilter = select([{ value: "", label: "Any provider" }], { value: errorProvider });
  const kindFilter = select([{ value: "", label: "Any kind" }, { value: "adapter", label: "Adapter errors" }, { value: "task_failure", label: "Task failures" }], { value: errorKind });
  const filterForm = (label, fields, changes) =>
    h(
      "form",
      { class: "filters", "aria-label": label, onsubmit: (event) => (event.preventDefault(), go(changes())) },
      fields,
      h("div", { class: "actions" }, button("Show", null, { type: "submit" })),
    );

  append(
    root,
    pageHeader("Operations", { subtitle: "Alerts and errors recorded by the ops service." }),
    section("Alerts", filterForm("Filter alerts", field({ label: "Status", control: alertFilter }), () => ({ alerts: alertFilter.value })), alertsSlot),
    section("Errors in the last 24 hours", countsSlot),
    section(
      "Error log",
      filterForm("Filter errors", [field({ label: "Provider", control: providerFilter }), field({ label: "Kind", control: kindFilter })], () => ({ provider: providerFilter.value, kind: kindFilter.value })),
      errorsSlot,
    ),
  );

  api("GET", "/admin/providers", { signal })
    .then((listed) => {
      for (const p of listed.providers) providerFilter.append(h("option", { value: p.slug }, p.name));
      providerFilter.value = errorProvider;
    })
    .catch(() => {});

  const shown = (slot) => (error) => error.name !== "AbortError" && replace(slot, errorBox(error));

  api("GET", "/admin/alerts", { signal, query: { status: alertStatus, page_size: 100 } })
    .then((listed) =>
      replace(
        alertsSlot,
        table({
          caption: "Alerts",
          rows: listed.alerts,
          emptyText: alertStatus === "open" ? "No open alerts." : "No alerts.",
          columns: [
            { label: "Raised", render: (a) => when(a.raisedAt) },
            { label: "Severity", render: (a) => h("span", { class: `badge ${a.severity === "critical" ? "danger" : "warning"}` }, a.severity) },
            { label: "Status", render: (a) => a.status },
            { label: "Rule", render: (a) => h("code", {}, a.rule) },
            { label: "Subject", render: (a) => a.subject },
            { label: "Summary", render: (a) => a.summary, class: "wide" },
            { label: "Resolved", render: (a) => (a.resolvedAt ? when(a.resolvedAt) : "—") },
          ],
        }),
      ),
    )
    .catch(shown(alertsSlot));

  api("GET", "/admin/errors/counts", { signal })
    .then((counted) =>
      replace(
        countsSlot,
        table({
          caption: "Errors per provider and code",
          rows: counted.counts,
          emptyText: "No errors in the last 24 hours.",
          columns: [
            { label: "Provider", render: (c) => c.provider },
            { label: "Code", render: (c) => h("code", {}, c.code) },
            { label: "Count", render: (c) => String(c.count), class: "number" },
            { label: "Last", render: (c) => when(c.lastAt) },
          ],
        }),
      ),
    )
    .catch(shown(countsSlot));

  const rows = [];
  async function loadErrors(pageToken = "") {
    const listed = await api("GET", "/admin/errors", { signal, query: { provider: errorProvider, kind: errorKind, page_size: 50, page_token: pageToken } });
    rows.push(...listed.errors);
    const more = listed.nextPageToken ? button("Load more", () => loadErrors(listed.nextPageToken).catch(shown(errorsSlot)), { tone: "subtle" }) : null;
    replace(
      errorsSlot,
      table({
        caption: "Error log",
        rows,
        emptyText: "The error log is empty.",
        columns: [
          { label: "When", render: (e) => when(e.at) },
          { label: "Kind", render: (e) => e.kind },
          { label: "Provider", render: (e) => e.provider },
          { label: "Model", render: (e) => e.model || "—" },
          { label: "Code", render: (e) => h("code", {}, e.code) },
          { label: "Message", render: (e) => e.message, class: "wide" },
          { label: "Task", render: (e) => (e.taskId ? h("a", { href: `#/tasks/${encodeURIComponent(e.taskId)}` }, h("code", {}, e.taskId.slice(0, 12))) : "—") },
        ],
      }),
      more,
    );
  }
  loadErrors().catch(shown(errorsSlot));
}
