// Providers: each with its key state (masked), models, last health check and breaker.

import { api } from "../api.js";
import { append, h, replace } from "../dom.js";
import { yesNo } from "../format.js";
import { healthCell, keyState } from "../provider-bits.js";
import { busy, button, errorBox, pageHeader, section, table } from "../ui.js";

export async function render(root, { signal }) {
  const [listed, health] = await Promise.all([
    api("GET", "/admin/providers", { signal }),
    // Without the ops service there is no recorded health: the list still shows.
    api("GET", "/admin/provider-health", { signal }).catch((error) => ({ providers: [], error })),
  ]);
  const healthOf = new Map(health.providers.map((p) => [p.provider, p]));
  const rowError = h("div");

  append(
    root,
    pageHeader("Providers", { subtitle: "Keys, settings, health and models of every provider." }),
    health.error ? errorBox(health.error) : null,
    rowError,
    section(
      "All providers",
      table({
        caption: "Providers",
        rows: listed.providers,
        rowAttrs: (p) => ({ dataset: { provider: p.slug } }),
        columns: [
          { label: "Provider", render: (p) => h("a", { href: `#/providers/${encodeURIComponent(p.slug)}` }, h("strong", {}, p.name), " ", h("code", {}, p.slug)) },
          { label: "Active", render: (p) => yesNo(p.active, "active", "inactive") },
          { label: "API key", render: (p) => keyState(p) },
          { label: "Models", render: (p) => String(p.modelCount), class: "number" },
          { label: "Health", render: (p) => h("div", { class: "health-cell" }, healthCell(healthOf.get(p.slug))) },
          {
            label: "Check",
            render: (p) => {
              const check = button("Check now", (event) => {
                const cell = event.currentTarget.closest("tr").querySelector(".health-cell");
                busy(check, async () => {
                  replace(cell, healthCell(await api("POST", `/admin/providers/${encodeURIComponent(p.slug)}/health`, { signal })));
                }, rowError);
              }, { tone: "subtle small", "aria-label": `Check ${p.name} now` });
              return check;
            },
          },
        ],
      }),
    ),
  );
}
