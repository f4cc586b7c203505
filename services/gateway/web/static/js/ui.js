// Small pieces every page uses: headers, sections, tables, loading / empty / error states,
// toasts and buttons that show they are busy.

import { h, replace } from "./dom.js";

export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status" }, text);
}

export function empty(text, ...extra) {
  return h("div", { class: "empty" }, h("p", {}, text), ...extra);
}

/** An error as the person needs it: the problem's message, its code, and each named field. */
export function errorBox(error) {
  const fields = error?.fieldErrors || [];
  return h(
    "div",
    { class: "notice error", role: "alert" },
    h("p", {}, h("strong", {}, error?.message || String(error)), error?.code ? h("code", { class: "code" }, error.code) : null),
    fields.length
      ? h("ul", { class: "field-list" }, fields.map((f) => h("li", {}, h("code", {}, f.field), ": ", f.message)))
      : null,
  );
}

export function notice(text, tone = "info") {
  return h("div", { class: `notice ${tone}` }, text);
}

/** The page title with its breadcrumbs and actions. */
export function pageHeader(title, { crumbs = [], actions = [], subtitle = "" } = {}) {
  return h(
    "header",
    { class: "page-header" },
    crumbs.length
      ? h(
          "nav",
          { "aria-label": "Breadcrumb", class: "crumbs" },
          h("ol", {}, crumbs.map(([label, href]) => h("li", {}, href ? h("a", { href }, label) : label))),
        )
      : null,
    h("div", { class: "page-title" }, h("h1", {}, title), h("div", { class: "actions" }, actions)),
    subtitle ? h("p", { class: "subtitle" }, subtitle) : null,
  );
}

export function section(title, ...children) {
  const id = `section-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

/** <dl> from [label, value] pairs; values may be nodes. Pairs with an undefined value are left out. */
export function details(pairs) {
  return h(
    "dl",
    { class: "details" },
    pairs.filter(([, value]) => value !== undefined).map(([label, value]) => [h("dt", {}, label), h("dd", {}, value ?? "—")]),
  );
}

/**
 * A readable table. columns: [{label, render: row => node|string, class?}]; an empty list
 * shows `emptyText` instead.
 */
export function table({ columns, rows, caption = "", emptyText = "Nothing here yet.", rowAttrs = () => ({}) }) {
  if (!rows.length) return empty(emptyText);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.class }, c.label)))),
      h(
        "tbody",
        {},
        rows.map((row) => h("tr", rowAttrs(row), columns.map((c) => h("td", { class: c.class }, c.render(row))))),
      ),
    ),
  );
}

export function button(label, onclick, { tone = "", type = "button", ...attrs } = {}) {
  return h("button", { type, class: `button ${tone}`.trim(), onclick, ...attrs }, label);
}

/**
 * Runs `work` with `control` disabled and marked busy; its error is shown in `errorSlot`
 * (or as a toast) instead of escaping, so a failed click never leaves a blank page.
 */
export async function busy(control, work, errorSlot = null) {
  const wasDisabled = control.disabled;
  control.disabled = true;
  control.setAttribute("aria-busy", "true");
  if (errorSlot) replace(errorSlot);
  try {
    return await work();
  } catch (error) {
    if (error.name === "AbortError") return undefined;
    if (errorSlot) replace(errorSlot, errorBox(error));
    else toast(error.message, "danger");
    return undefined;
  } finally {
    control.disabled = wasDisabled;
    control.removeAttribute("aria-busy");
  }
}

export function toast(message, tone = "success") {
  const box = document.getElementById("toasts");
  const item = h("div", { class: `toast ${tone}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), tone === "danger" ? 8000 : 4000);
}

export function confirmed(question) {
  return window.confirm(question);
}

/** Text that can be copied with one click (ids, keys of storage). */
export function copyable(text) {
  if (!text) return "—";
  const copy = async (event) => {
    try {
      await navigator.clipboard.writeText(text);
      toast("Copied");
    } catch {
      toast("Copying is not allowed here; select the text instead", "warning");
    }
    event.currentTarget.blur();
  };
  return h("span", { class: "copyable" }, h("code", {}, text), h("button", { type: "button", class: "button subtle small", onclick: copy, "aria-label": `Copy ${text}` }, "Copy"));
}
