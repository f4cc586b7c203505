// Labelled form controls with a place for their error, and putting a problem's field errors
// next to the fields they name.

import { h, replace, uid } from "./dom.js";
import { errorBox } from "./ui.js";

/**
 * A labelled control. `field` is the name the server uses for it in problem documents
 * (e.g. "prompt", "parameters.width", "slug"); its error message appears under the control.
 */
export function field({ label, control, field: name = "", help = "", required = false }) {
  const id = control.id || uid("control");
  control.id = id;
  const helpId = `${id}-help`;
  const errorId = `${id}-error`;
  control.setAttribute("aria-describedby", [help ? helpId : "", errorId].filter(Boolean).join(" "));
  if (required) control.required = true;
  const isCheckbox = control.type === "checkbox";
  const labelNode = h("label", { for: id }, label, required ? h("span", { class: "required", "aria-hidden": "true" }, " *") : null);
  return h(
    "div",
    { class: `field${isCheckbox ? " checkbox" : ""}`, dataset: { field: name } },
    isCheckbox ? [control, labelNode] : [labelNode, control],
    help ? h("p", { class: "help", id: helpId }, help) : null,
    h("p", { class: "field-error", id: errorId, hidden: true }),
  );
}

export function input(attrs = {}) {
  return h("input", { type: "text", ...attrs });
}

export function textarea(attrs = {}) {
  const { value = "", ...rest } = attrs;
  const node = h("textarea", rest);
  node.value = value;
  return node;
}

/** <select> from [{value, label}] (or plain strings); `value` is selected. */
export function select(options, { value = "", ...attrs } = {}) {
  const node = h(
    "select",
    attrs,
    options.map((o) => {
      const option = typeof o === "object" ? o : { value: o, label: o };
      return h("option", { value: String(option.value), disabled: option.disabled }, option.label);
    }),
  );
  node.value = String(value ?? "");
  return node;
}

export function checkbox(attrs = {}) {
  return h("input", { type: "checkbox", ...attrs });
}

/** Clears every field error in `root` and its form-level error slot. */
export function clearErrors(root) {
  for (const slot of root.querySelectorAll(".field-error")) {
    slot.textContent = "";
    slot.hidden = true;
  }
  for (const control of root.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
  const general = root.querySelector(":scope > .form-error, .form-error");
  if (general) replace(general);
}

/**
 * Shows `error` in `root`: each field error next to the field it names (a field of
 * `parameters.x` or `input_images[1]` finds `[data-field=...]`, then its parent name), the rest
 * with the problem's message in the form's `.form-error` slot. Focuses the first bad field.
 * `aliases` maps server field names to the form's (e.g. {"model": "model_slug"}).
 */
export function showErrors(root, error, aliases = {}) {
  clearErrors(root);
  const unplaced = [];
  let first = null;
  for (const fieldError of error.fieldErrors || []) {
    const name = aliases[fieldError.field] || fieldError.field;
    const holder = findField(root, name);
    if (!holder) {
      unplaced.push(fieldError);
      continue;
    }
    const slot = holder.querySelector(".field-error");
    slot.textContent = slot.textContent ? `${slot.textContent}; ${fieldError.message}` : fieldError.message;
    slot.hidden = false;
    const control = holder.querySelector("input, select, textarea");
    if (control) {
      control.setAttribute("aria-invalid", "true");
      first = first || control;
    }
  }
  const general = root.querySelector(".form-error");
  if (general && (unplaced.length || !(error.fieldErrors || []).length)) {
    replace(general, errorBox({ message: error.message, code: error.code, fieldErrors: unplaced }));
  } else if (general) {
    replace(general, h("p", { class: "notice error", role: "alert" }, error.message));
  }
  if (first) first.focus();
}

function findField(root, name) {
  let candidate = name;
  while (candidate) {
    const found = root.querySelector(`[data-field="${CSS.escape(candidate)}"]`);
    if (found) return found;
    const cut = Math.max(candidate.lastIndexOf("."), candidate.lastIndexOf("["));
    candidate = cut > 0 ? candidate.slice(0, cut) : "";
  }
  return null;
}

/** A slot for errors that belong to no single field. */
export function formError() {
  return h("div", { class: "form-error", "aria-live": "assertive" });
}
