// Pages live behind the URL fragment (#/tasks/abc?status=FAILED): the gateway serves one
// index.html, links can be bookmarked and shared, and Back/Forward work.

import { replace } from "./dom.js";
import { errorBox, loading } from "./ui.js";

const ROUTES = [
  { pattern: /^\/generate$/, nav: "generate", load: () => import("./pages/generate.js") },
  { pattern: /^\/tasks$/, nav: "tasks", load: () => import("./pages/task-list.js") },
  { pattern: /^\/tasks\/([^/]+)$/, nav: "tasks", load: () => import("./pages/task-detail.js") },
  { pattern: /^\/providers$/, nav: "providers", load: () => import("./pages/providers.js") },
  { pattern: /^\/providers\/([^/]+)$/, nav: "providers", load: () => import("./pages/provider-detail.js") },
  { pattern: /^\/studio$/, nav: "studio", load: () => import("./pages/studio-projects.js") },
  { pattern: /^\/studio\/projects\/([^/]+)$/, nav: "studio", load: () => import("./pages/studio-project.js") },
  { pattern: /^\/studio\/episodes\/([^/]+)$/, nav: "studio", load: () => import("./pages/studio-episode.js") },
  { pattern: /^\/studio\/shots\/([^/]+)$/, nav: "studio", load: () => import("./pages/studio-shot.js") },
  { pattern: /^\/operations$/, nav: "operations", load: () => import("./pages/operations.js") },
];
const DEFAULT_PATH = "/generate";

let current = null; // the shown page's AbortController: leaving a page ends its requests and streams

/** The fragment's path and query: "#/tasks?status=FAILED" → {path: "/tasks", query}. */
export function location() {
  const raw = window.location.hash.replace(/^#/, "") || DEFAULT_PATH;
  const [path, search = ""] = raw.split("?");
  return { path, query: new URLSearchParams(search) };
}

/** Goes to `path` with `query` (an object; empty values left out). */
export function navigate(path, query = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    for (const item of [value].flat()) if (item !== undefined && item !== null && item !== "") params.append(name, item);
  }
  const text = params.toString();
  window.location.hash = `#${path}${text ? `?${text}` : ""}`;
}

function highlight(nav) {
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function show() {
  const main = document.getElementById("main");
  const { path, query } = location();
  const route = ROUTES.find((r) => r.pattern.test(path));
  if (!route) {
    navigate(DEFAULT_PATH);
    return;
  }
  current?.abort();
  const controller = new AbortController();
  current = controller;
  highlight(route.nav);
  replace(main, loading());
  const params = path.match(route.pattern).slice(1).map(decodeURIComponent);
  try {
    const page = await route.load();
    if (controller.signal.aborted) return;
    const view = document.createElement("div");
    view.className = "page";
    replace(main, view);
    await page.render(view, { params, query, signal: controller.signal });
  } catch (error) {
    if (error.name === "AbortError" || controller.signal.aborted) return;
    replace(main, errorBox(error));
  }
  if (!controller.signal.aborted) {
    const heading = main.querySelector("h1");
    document.title = heading ? `${heading.textContent} · aigen admin` : "aigen admin";
  }
}

/** Shows the current page again (after the token changed, for instance). */
export function refresh() {
  show();
}

export function start() {
  window.addEventListener("hashchange", () => {
    show();
    // Move focus to the new content so keyboard and screen-reader users land on it.
    document.getElementById("main").focus({ preventScroll: true });
  });
  show();
}
