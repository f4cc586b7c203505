// Model field labels in English or Chinese. Models declare both (`label`, `labelZh`); the
// choice is remembered in localStorage because it is a preference, not a secret.

const STORAGE_KEY = "aigen.labelLanguage";
const listeners = new Set();

export function labelLanguage() {
  return localStorage.getItem(STORAGE_KEY) === "zh" ? "zh" : "en";
}

export function setLabelLanguage(language) {
  localStorage.setItem(STORAGE_KEY, language === "zh" ? "zh" : "en");
  document.documentElement.dataset.labels = labelLanguage();
  for (const listener of listeners) listener(labelLanguage());
}

/** Calls `listener(language)` on each change until `signal` aborts. */
export function onLabelLanguage(listener, signal) {
  listeners.add(listener);
  signal?.addEventListener("abort", () => listeners.delete(listener));
}

/** The label of a model field in the chosen language (English when it has no Chinese one). */
export function fieldLabel(field) {
  return labelLanguage() === "zh" && field.labelZh ? field.labelZh : field.label || field.key;
}
