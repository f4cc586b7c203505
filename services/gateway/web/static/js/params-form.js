// A model's parameters as form controls, rendered from the fields the model declares (key,
// label, type, default, options, min/max/step, helper text, placeholder).

import { h } from "./dom.js";
import { checkbox, field, input, select, textarea } from "./forms.js";
import { fieldLabel } from "./labels.js";

function controlFor(spec, initial) {
  const value = initial !== undefined ? initial : spec.default;
  const name = `param-${spec.key}`;
  switch (spec.type) {
    case "select": {
      // Option values may be numbers or booleans: the <option> carries their JSON.
      const options = (spec.options || []).map((o) => ({ value: JSON.stringify(o.value), label: o.label }));
      if (!spec.required && value === undefined) options.unshift({ value: "", label: "— default —" });
      return select(options, { name, value: value === undefined ? "" : JSON.stringify(value) });
    }
    case "boolean":
      return checkbox({ name, checked: Boolean(value) });
    case "number":
      return input({
        type: "number",
        name,
        value: value ?? "",
        min: spec.min,
        max: spec.max,
        step: spec.step ?? (spec.integer ? 1 : "any"),
        inputmode: spec.integer ? "numeric" : "decimal",
        placeholder: spec.placeholder,
      });
    case "textarea":
      return textarea({ name, value: value ?? "", rows: 3, placeholder: spec.placeholder, maxlength: spec.maxLength });
    default:
      return input({ name, value: value ?? "", placeholder: spec.placeholder, maxlength: spec.maxLength });
  }
}

function rangeHint(spec) {
  if (spec.type !== "number") return "";
  const parts = [];
  if (spec.min !== undefined && spec.min !== null) parts.push(`min ${spec.min}`);
  if (spec.max !== undefined && spec.max !== null) parts.push(`max ${spec.max}`);
  if (spec.step !== undefined && spec.step !== null && spec.step !== 1) parts.push(`step ${spec.step}`);
  return parts.join(", ");
}

function readControl(spec, control) {
  switch (spec.type) {
    case "select":
      return control.value === "" ? undefined : JSON.parse(control.value);
    case "boolean":
      return control.checked;
    case "number": {
      if (control.value.trim() === "") return undefined;
      // valueAsNumber is NaN for text the browser could not read: send it as typed, so the
      // server names the field and says why.
      const number = control.valueAsNumber;
      return Number.isNaN(number) ? control.value : number;
    }
    default:
      return control.value === "" ? undefined : control.value;
  }
}

/**
 * The parameters form of `model`. Returns {element, values(), relabel()}: values() has only the
 * fields that are set (the server applies defaults), relabel() follows the label language.
 */
export function parametersForm(model, initial = {}) {
  const entries = (model.fields || []).map((spec) => {
    const control = controlFor(spec, initial[spec.key]);
    const hints = [spec.helperText, rangeHint(spec)].filter(Boolean).join(" · ");
    const wrapper = field({ label: fieldLabel(spec), control, field: `parameters.${spec.key}`, help: hints, required: spec.required });
    return { spec, control, wrapper };
  });
  const element = entries.length
    ? h("fieldset", { class: "parameters" }, h("legend", {}, "Parameters"), h("div", { class: "grid" }, entries.map((e) => e.wrapper)))
    : h("p", { class: "muted" }, "This model has no parameters.");
  return {
    element,
    values() {
      const values = {};
      for (const { spec, control } of entries) {
        const value = readControl(spec, control);
        if (value !== undefined) values[spec.key] = value;
      }
      return values;
    },
    relabel() {
      for (const { spec, wrapper } of entries) {
        const label = wrapper.querySelector("label");
        label.firstChild.textContent = fieldLabel(spec);
      }
    },
  };
}
