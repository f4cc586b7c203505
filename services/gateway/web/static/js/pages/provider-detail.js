// One provider: set or clear its API key, change its settings, check its health, and turn its
// models on and off.

import { api } from "../api.js";
import { append, h, replace } from "../dom.js";
import { checkbox, clearErrors, field, formError, input, showErrors } from "../forms.js";
import { yesNo } from "../format.js";
import { healthCell, keyState } from "../provider-bits.js";
import { busy, button, confirmed, details, errorBox, loading, pageHeader, section, table, toast } from "../ui.js";

export async function render(root, { params: [slug], signal }) {
  const path = `/admin/providers/${encodeURIComponent(slug)}`;
  let provider = await api("GET", path, { signal });

  const summary = h("div");
  const keySlot = h("div");
  const healthSlot = h("div", {}, loading("Loading the last check…"));
  const modelsSlot = h("div", {}, loading("Loading models…"));

  const drawSummary = () => {
    replace(
      summary,
      details([
        ["Slug", h("code", {}, provider.slug)],
        ["Platform", provider.platform],
        ["Description", provider.description || "—"],
        ["Active", yesNo(provider.active, "active", "inactive")],
        ["Models", String(provider.modelCount)],
        ["Credit price", provider.creditUsd ? `$${provider.creditUsd} per credit` : undefined],
      ]),
    );
    replace(keySlot, keyState(provider));
  };

  // --- API key ------------------------------------------------------------------------------------
  const keyInput = input({ type: "password", name: "api_key", autocomplete: "new-password", spellcheck: "false" });
  const keyForm = h("form", { class: "stack", "aria-label": "API key" });
  const saveKey = button("Save key", null, { tone: "primary", type: "submit" });
  const clearKey = button("Clear stored key", () => {
    if (!confirmed(`Clear the stored key of ${provider.name}? The environment's key (AI_PROVIDER_…_API_KEY) applies if there is one.`)) return;
    busy(clearKey, async () => {
      try {
        provider = await api("PUT", `${path}/api-key`, { signal, body: { api_key: "" } });
        drawSummary();
        toast("Stored key cleared");
      } catch (error) {
        showErrors(keyForm, error);
      }
    });
  }, { tone: "subtle" });
  append(
    keyForm,
    h("p", {}, "Current key: ", keySlot),
    field({ label: "New API key", control: keyInput, field: "api_key", help: "Stored encrypted; only its last four characters are ever shown again." }),
    formError(),
    h("div", { class: "actions" }, saveKey, clearKey),
  );
  keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(keyForm);
    if (!keyInput.value) {
      showErrors(keyForm, { message: "Enter a key (or use Clear stored key).", fieldErrors: [{ field: "api_key", message: "is required" }] });
      return;
    }
    busy(saveKey, async () => {
      try {
        provider = await api("PUT", `${path}/api-key`, { signal, body: { api_key: keyInput.value } });
        keyInput.value = ""; // the key leaves the page as soon as it is stored
        drawSummary();
        toast("Key stored");
      } catch (error) {
        showErrors(keyForm, error);
      }
    });
  });

  // --- settings -----------------------------------------------------------------------------------
  const endpoint = input({ type: "url", name: "api_endpoint", value: provider.apiEndpoint });
  const uploadToS3 = checkbox({ name: "upload_to_s3", checked: provider.uploadToS3 });
  const prefix = input({ name: "s3_path_prefix", value: provider.s3PathPrefix });
  const active = checkbox({ name: "active", checked: provider.active });
  const sortOrder = input({ type: "number", name: "sort_order", value: provider.sortOrder, step: 1 });
  const saveSettings = button("Save settings", null, { tone: "primary", type: "submit" });
  const settingsForm = h(
    "form",
    { class: "stack", novalidate: true, "aria-label": "Settings" },
    field({ label: "API endpoint", control: endpoint, field: "api_endpoint" }),
    field({ label: "Copy results to object storage", control: uploadToS3, field: "upload_to_s3", help: "Off: tasks keep the provider's own URLs." }),
    field({ label: "Storage path prefix", control: prefix, field: "s3_path_prefix" }),
    field({ label: "Active", control: active, field: "active" }),
    field({ label: "Sort order", control: sortOrder, field: "sort_order" }),
    formError(),
    h("div", { class: "actions" }, saveSettings),
  );
  settingsForm.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(settingsForm);
    busy(saveSettings, async () => {
      try {
        provider = await api("PATCH", path, {
          signal,
          body: {
            api_endpoint: endpoint.value,
            upload_to_s3: uploadToS3.checked,
            s3_path_prefix: prefix.value,
            active: active.checked,
            sort_order: sortOrder.value === "" ? null : Number(sortOrder.value),
          },
        });
        drawSummary();
        toast("Settings saved");
      } catch (error) {
        showErrors(settingsForm, error);
      }
    });
  });

  // --- health -------------------------------------------------------------------------------------
  const healthError = h("div");
  const checkNow = button("Check now", () =>
    busy(checkNow, async () => {
      const result = await api("POST", `${path}/health`, { signal });
      replace(healthSlot, healthCell(result));
    }, healthError),
    { tone: "primary" },
  );
  api("GET", "/admin/provider-health", { signal })
    .then((all) => replace(healthSlot, healthCell(all.providers.find((p) => p.provider === slug))))
    .catch((error) => error.name !== "AbortError" && replace(healthSlot, h("span", { class: "muted" }, `No recorded checks: ${error.message}`)));

  // --- models -------------------------------------------------------------------------------------
  const modelsError = h("div");
  async function loadModels() {
    const listed = await api("GET", "/admin/models", { signal, query: { provider: slug } });
    replace(
      modelsSlot,
      table({
        caption: `Models of ${provider.name}`,
        rows: listed.models,
        emptyText: "This provider has no models.",
        rowAttrs: (m) => ({ dataset: { model: m.slug } }),
        columns: [
          { label: "Model", render: (m) => h("span", {}, h("strong", {}, m.name), " ", h("code", {}, m.slug)) },
          { label: "Type", render: (m) => m.outputType },
          { label: "Available", render: (m) => (m.available ? "yes" : h("span", { title: m.unavailableReason || "" }, `no: ${m.unavailableReason || "unavailable"}`)) },
          { label: "Price", render: (m) => m.price?.display || "—" },
          { label: "Used", render: (m) => String(m.usageCount ?? 0), class: "number" },
          { label: "Active", render: (m) => yesNo(m.active, "active", "inactive") },
          {
            label: "Action",
            render: (m) => {
              const toggle = button(m.active ? "Deactivate" : "Activate", () =>
                busy(toggle, async () => {
                  await api("PATCH", `/admin/models/${encodeURIComponent(m.slug)}`, { signal, body: { active: !m.active } });
                  toast(`${m.name} ${m.active ? "deactivated" : "activated"}`);
                  await loadModels();
                }, modelsError),
                { tone: "subtle small", "aria-label": `${m.active ? "Deactivate" : "Activate"} ${m.name}` },
              );
              return toggle;
            },
          },
        ],
      }),
    );
  }

  drawSummary();
  append(
    root,
    pageHeader(provider.name, { crumbs: [["Providers", "#/providers"], [provider.name]] }),
    h(
      "div",
      { class: "detail-grid" },
      section("About", summary),
      section("API key", keyForm),
      section("Health", h("div", { class: "inline" }, healthSlot, checkNow), healthError),
      section("Settings", settingsForm),
    ),
    section("Models", modelsError, modelsSlot),
  );
  loadModels().catch((error) => error.name !== "AbortError" && replace(modelsSlot, errorBox(error)));
}
