// How a provider's key and health read, on the providers list and a provider's page.

import { h } from "./dom.js";
import { when } from "./format.js";

const KEY_SOURCES = {
  stored: "stored here (encrypted)",
  environment: "from the environment",
  none: "none",
};

/** The key as a mask and where it comes from; the key itself is never sent to the browser. */
export function keyState(provider) {
  if (!provider.hasApiKey) {
    return h("span", { class: "key-state", dataset: { keyState: "none" } }, h("span", { class: "badge neutral" }, "no key"));
  }
  return h(
    "span",
    { class: "key-state", dataset: { keyState: provider.apiKeySource } },
    h("code", { class: "masked" }, provider.apiKeyMasked || "••••"),
    " ",
    h("span", { class: "muted" }, KEY_SOURCES[provider.apiKeySource] || provider.apiKeySource),
  );
}

function balance(check) {
  if (check.balance === undefined || check.balance === null) return null;
  const amount = Number(check.balance).toLocaleString(undefined, { maximumFractionDigits: 4 });
  return `${amount} ${check.balanceUnit || ""}`.trim();
}

/** A health check result: OK or failing, its latency, balance, when, and the breaker. */
export function healthCell(check) {
  if (!check) return h("span", { class: "muted" }, "not checked yet");
  const parts = [
    h("span", { class: `badge ${check.ok ? "success" : "danger"}` }, check.ok ? "OK" : "FAILING"),
    h("span", {}, `${Number(check.latencyMs || 0).toFixed(0)} ms`),
  ];
  const left = balance(check);
  if (left) parts.push(h("span", {}, `balance ${left}`));
  if (check.breaker === "open") parts.push(h("span", { class: "badge danger", title: check.breakerReason || "" }, "breaker open"));
  return h(
    "span",
    { class: "health", dataset: { ok: String(Boolean(check.ok)) } },
    parts,
    check.message ? h("span", { class: "muted health-message" }, check.message) : null,
    check.checkedAt ? h("span", { class: "muted" }, " · ", when(check.checkedAt)) : null,
  );
}
