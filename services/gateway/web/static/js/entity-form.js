// Create / edit forms for Studio records, declared as a list of fields. Field names are the
// service's own (snake_case), so a problem's field errors land next to the right control.

import { h } from "./dom.js";
import { checkbox, clearErrors, field, formError, input, select, showErrors, textarea } from "./forms.js";
import { busy, button } from "./ui.js";

function controlFor(spec, value) {
  switch (spec.kind) {
    case "textarea":
      return textarea({ name: spec.name, value: value ?? "", rows: spec.rows || 3, placeholder: spec.placeholder });
    case "lines":
      return textarea({ name: spec.name, value: (value || []).join("\n"), rows: spec.rows || 3, placeholder: spec.placeholder || "one per line" });
    case "number":
      return input({ type: "number", name: spec.name, value: value ?? "", min: spec.min, max: spec.max, step: spec.step ?? "any", placeholder: spec.placeholder });
    case "select":
      return select(spec.options, { name: spec.name, value: value ?? "" });
    case "checkbox":
      return checkbox({ name: spec.name, checked: Boolean(value) });
    default:
      return input({ type: spec.type || "text", name: spec.name, value: value ?? "", placeholder: spec.placeholder, autocomplete: "off" });
  }
}

function read(spec, control) {
  switch (spec.kind) {
    case "lines":
      return control.value.split("\n").map((line) => line.trim()).filter(Boolean);
    case "number":
      return control.value.trim() === "" ? undefined : Number.isNaN(control.valueAsNumber) ? control.value : control.valueAsNumber;
    case "checkbox":
      return control.checked;
    default:
      return control.value;
  }
}

/**
 * fields: [{name, label, kind?: text|textarea|lines|number|select|checkbox, options?, help?,
 * required?, placeholder?, min?, max?, step?}]. `onSubmit(values)` runs with the button busy;
 * its error is shown in the form. `resetOnSuccess` empties the form after a create.
 */
export function entityForm({ fields, values = {}, submitLabel = "Save", onSubmit, label, resetOnSuccess = false, extra = null }) {
  const controls = fields.map((spec) => ({ spec, control: controlFor(spec, values[spec.name]) }));
  const submit = button(submitLabel, null, { tone: "primary", type: "submit" });
  const form = h(
    "form",
    { class: "entity-form", novalidate: true, "aria-label": label },
    h("div", { class: "grid" }, controls.map(({ spec, control }) => h("div", { class: spec.wide ? "span-all" : "" }, field({ label: spec.label, control, field: spec.name, help: spec.help, required: spec.required })))),
    extra,
    formError(),
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form);
    const collected = {};
    for (const { spec, control } of controls) {
      const value = read(spec, control);
      if (value !== undefined) collected[spec.name] = value;
    }
    busy(submit, async () => {
      try {
        await onSubmit(collected);
        if (resetOnSuccess) form.reset();
      } catch (error) {
        if (error.name !== "AbortError") showErrors(form, error);
      }
    });
  });
  return form;
}

/** A disclosure holding a form: "New episode" opens it. */
export function disclosure(summary, content, open = false) {
  return h("details", { class: "disclosure", open }, h("summary", {}, summary), content);
}
