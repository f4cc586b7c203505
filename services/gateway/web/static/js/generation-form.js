// The generation form shared by the Generate page and a Studio shot's panel: output type →
// provider → model → prompt → input (or reference) images → number of outputs → the model's
// parameters, with the price asked from the gateway each time something changes.

import { api } from "./api.js";
import { h, replace, uid } from "./dom.js";
import { field, formError, input, select, showErrors, textarea, clearErrors } from "./forms.js";
import { money } from "./format.js";
import { onLabelLanguage } from "./labels.js";
import { parametersForm } from "./params-form.js";
import { button, busy, errorBox, loading } from "./ui.js";

export const OUTPUT_TYPES = [
  { value: "IMAGE", label: "Image" },
  { value: "VIDEO", label: "Video" },
  { value: "AUDIO", label: "Audio" },
];

const QUOTE_DELAY_MS = 250;

// Server field names → this form's: the dispatcher and Studio name the model `model`, Studio
// names images `reference_images`.
const ALIASES = { model: "model_slug", reference_images: "input_images" };

/** Active providers and models, fetched together. */
export async function loadCatalog(signal) {
  const [providers, models] = await Promise.all([
    api("GET", "/admin/providers", { query: { active: true }, signal }),
    api("GET", "/admin/models", { query: { active: true }, signal }),
  ]);
  return { providers: providers.providers, models: models.models };
}

/**
 * Options:
 *  mode: "admin" (input images) or "shot" (reference images, composed prompt)
 *  outputType, defaultModels ({IMAGE: slug, …}): what to preselect
 *  compose(outputType): resolves {prompt, referenceImages} (shot mode)
 *  onSubmit(request): request = {outputType, model, prompt, inputImages, numberOfOutputs, parameters}
 */
export function generationForm({ signal, mode = "admin", outputType = "IMAGE", defaultModels = {}, compose = null, submitLabel = "Generate", onSubmit }) {
  const root = h("div", { class: "generation-form-holder" }, loading("Loading models…"));
  loadCatalog(signal)
    .then((catalog) => replace(root, build(catalog)))
    .catch((error) => {
      if (error.name !== "AbortError") replace(root, errorBox(error));
    });

  function build({ providers, models }) {
    const state = { outputType, provider: "", model: null, params: null, images: [], composed: null, quoteSeq: 0, quoteTimer: 0 };
    const formId = uid("generation");
    const imagesLabel = mode === "shot" ? "Reference images" : "Input images";

    const typeRadios = OUTPUT_TYPES.map((t) =>
      h("label", { class: "segment" }, h("input", { type: "radio", name: `${formId}-type`, value: t.value, checked: t.value === state.outputType }), h("span", {}, t.label)),
    );
    const typeGroup = h("fieldset", { class: "segmented", dataset: { field: "output_type" } }, h("legend", {}, "Output type"), typeRadios, h("p", { class: "field-error", hidden: true }));
    const providerSelect = select([], { name: "provider" });
    const modelSelect = select([], { name: "model" });
    const modelInfo = h("div", { class: "model-info", "aria-live": "polite" });
    const prompt = textarea({ name: "prompt", rows: mode === "shot" ? 6 : 4, placeholder: "Describe what to make" });
    const composeButton = mode === "shot" ? button("Compose again", () => recompose(true), { tone: "subtle small" }) : null;
    const imagesHolder = h("div", { class: "image-list", dataset: { field: "input_images" } });
    const outputsSlot = h("div", { class: "outputs-slot" });
    const paramsSlot = h("div", { class: "params-slot" });
    const price = h("output", { class: "price", "aria-live": "polite", for: `${formId}-model` }, "—");
    const errorSlot = formError();
    const submit = button(submitLabel, null, { tone: "primary", type: "submit" });
    modelSelect.id = `${formId}-model`;

    const form = h(
      "form",
      { class: "generation-form", novalidate: true, "aria-label": mode === "shot" ? "Generate for this shot" : "Generate" },
      typeGroup,
      h("div", { class: "grid two" }, field({ label: "Provider", control: providerSelect, field: "provider" }), field({ label: "Model", control: modelSelect, field: "model_slug" })),
      modelInfo,
      h("div", { class: "prompt-field" }, field({ label: "Prompt", control: prompt, field: "prompt" }), composeButton),
      h("div", { class: "field images-field" }, h("span", { class: "label" }, imagesLabel), imagesHolder, h("p", { class: "field-error", hidden: true })),
      outputsSlot,
      paramsSlot,
      h("div", { class: "price-row" }, h("span", { class: "label" }, "Price"), price),
      errorSlot,
      h("div", { class: "actions" }, submit),
    );

    // --- choosing -------------------------------------------------------------------------------

    function modelsOf(type, provider) {
      return models.filter((m) => m.outputType === type && (!provider || m.provider === provider));
    }

    function setOutputType(type) {
      state.outputType = type;
      const offered = providers.filter((p) => modelsOf(type, p.slug).length);
      const preferred = models.find((m) => m.slug === defaultModels[type])?.provider;
      const keep = offered.find((p) => p.slug === state.provider);
      const chosen = offered.find((p) => p.slug === preferred) || keep || offered[0];
      replace(providerSelect, offered.map((p) => h("option", { value: p.slug }, p.name)));
      providerSelect.disabled = !offered.length;
      if (!chosen) {
        replace(modelSelect);
        modelSelect.disabled = true;
        setModel(null);
        replace(modelInfo, h("p", { class: "notice warning" }, `No active model makes ${type.toLowerCase()} output.`));
        return;
      }
      providerSelect.value = chosen.slug;
      setProvider(chosen.slug);
      if (mode === "shot") recompose(false);
    }

    function setProvider(slug) {
      state.provider = slug;
      const offered = modelsOf(state.outputType, slug);
      replace(
        modelSelect,
        offered.map((m) => h("option", { value: m.slug, disabled: !m.available }, m.available ? m.name : `${m.name} (unavailable)`)),
      );
      modelSelect.disabled = !offered.length;
      const usable = offered.filter((m) => m.available);
      const chosen = usable.find((m) => m.slug === defaultModels[state.outputType]) || usable.find((m) => m.slug === state.model?.slug) || usable[0] || offered[0];
      modelSelect.value = chosen ? chosen.slug : "";
      setModel(chosen || null);
    }

    function setModel(model) {
      syncImages();
      state.model = model;
      if (!model) {
        replace(paramsSlot);
        replace(outputsSlot);
        renderImages(state.images);
        replace(price, "—");
        return;
      }
      replace(
        modelInfo,
        h("p", {}, model.description || ""),
        h("p", { class: "tags" }, [...(model.functionTags || [])].map((t) => h("span", { class: "tag" }, t)), h("code", { class: "slug" }, model.slug)),
        model.available ? null : h("p", { class: "notice warning" }, `Unavailable: ${model.unavailableReason || "its provider cannot serve it now"}`),
      );
      prompt.required = Boolean(model.promptRequired);
      if (model.promptMaxLength) prompt.maxLength = model.promptMaxLength;
      else prompt.removeAttribute("maxlength");
      const previous = state.params ? state.params.values() : {};
      state.params = parametersForm(model, sameKeys(previous, model));
      replace(paramsSlot, state.params.element);
      renderOutputs(model);
      renderImages(state.images);
      clearErrors(form);
      scheduleQuote();
    }

    // Keep what was typed for parameters the new model has too (switching between similar models).
    function sameKeys(values, model) {
      const keys = new Set((model.fields || []).map((f) => f.key));
      return Object.fromEntries(Object.entries(values).filter(([k]) => keys.has(k)));
    }

    function renderOutputs(model) {
      const { min = 1, max = 1, allowed, default: initial = 1 } = model.outputs || {};
      if (allowed && allowed.length) {
        const control = select(allowed.map((n) => ({ value: n, label: String(n) })), { name: "number_of_outputs", value: initial });
        replace(outputsSlot, field({ label: "Number of outputs", control, field: "number_of_outputs" }));
      } else if (max > 1) {
        const control = input({ type: "number", name: "number_of_outputs", min, max, step: 1, value: initial, inputmode: "numeric" });
        replace(outputsSlot, field({ label: "Number of outputs", control, field: "number_of_outputs", help: `${min} to ${max}` }));
      } else {
        replace(outputsSlot);
      }
    }

    // --- images -----------------------------------------------------------------------------------
    // state.images keeps every URL (blanks too, while being typed), also those a model with a
    // lower limit does not show, so switching back to a model that takes them restores them.

    function imageLimit() {
      return state.model?.inputImages?.max ?? 0;
    }

    function syncImages() {
      const shown = [...imagesHolder.querySelectorAll("input[type=url]")].map((i) => i.value.trim());
      if (shown.length || imageLimit() > 0) state.images = [...shown, ...state.images.slice(shown.length)];
    }

    function currentImages() {
      syncImages();
      return state.images.filter(Boolean).slice(0, imageLimit());
    }

    function renderImages(urls) {
      state.images = urls;
      const limit = imageLimit();
      const rows = urls.slice(0, limit).map((url, index) => imageRow(url, index));
      const add = button(
        "Add image URL",
        () => {
          syncImages();
          renderImages([...state.images.slice(0, limit), ""]);
          [...imagesHolder.querySelectorAll("input[type=url]")].pop()?.focus();
        },
        { tone: "subtle small", disabled: rows.length >= limit },
      );
      const minimum = state.model?.inputImages?.min;
      const note =
        limit === 0
          ? h("p", { class: "help" }, mode === "shot" && urls.some(Boolean) ? "This model takes no images: the reference images are not sent." : "This model takes no input images.")
          : h("p", { class: "help" }, `Up to ${limit}, as http(s) URLs.${minimum ? ` At least ${minimum}.` : ""}`);
      replace(imagesHolder, rows, limit > 0 ? add : null, note);
    }

    function imageRow(url, index) {
      const which = `${mode === "shot" ? "Reference" : "Input"} image ${index + 1}`;
      const control = input({ type: "url", value: url, placeholder: "https://…", "aria-label": `${which} URL` });
      const thumb = h("img", { class: "thumb", alt: "", hidden: true });
      // A preview only for what can be one; a URL that does not load leaves no broken icon.
      thumb.addEventListener("error", () => (thumb.hidden = true));
      thumb.addEventListener("load", () => (thumb.hidden = false));
      const preview = () => {
        const value = control.value.trim();
        thumb.hidden = true;
        if (/^(https?:|data:image\/)/i.test(value)) thumb.src = value;
        else thumb.removeAttribute("src");
      };
      preview();
      control.addEventListener("change", () => {
        preview();
        syncImages();
        scheduleQuote();
      });
      const remove = button(
        "Remove",
        () => {
          syncImages();
          const values = [...state.images];
          values.splice(index, 1);
          renderImages(values);
          scheduleQuote();
        },
        { tone: "subtle small", "aria-label": `Remove ${which.toLowerCase()}` },
      );
      return h("div", { class: "image-row", dataset: { field: `input_images[${index}]` } }, thumb, control, remove, h("p", { class: "field-error", hidden: true }));
    }

    // --- Studio prompt composition ----------------------------------------------------------------

    async function recompose(force) {
      if (!compose) return;
      const untouched = !prompt.value.trim() || (state.composed && prompt.value === state.composed.prompt);
      if (!force && !untouched) return;
      try {
        const composed = await compose(state.outputType);
        state.composed = composed;
        prompt.value = composed.prompt || "";
        renderImages(composed.referenceImages || []);
        scheduleQuote();
      } catch (error) {
        if (error.name !== "AbortError") replace(errorSlot, errorBox(error));
      }
    }

    // --- price ------------------------------------------------------------------------------------

    function request() {
      const outputsControl = outputsSlot.querySelector("[name=number_of_outputs]");
      const numberOfOutputs = outputsControl && outputsControl.value !== "" ? Number(outputsControl.value) : undefined;
      const limit = imageLimit();
      return {
        outputType: state.outputType,
        model: state.model?.slug || "",
        prompt: prompt.value,
        inputImages: limit > 0 ? currentImages().slice(0, limit) : [],
        numberOfOutputs,
        parameters: state.params ? state.params.values() : {},
      };
    }

    function scheduleQuote() {
      clearTimeout(state.quoteTimer);
      state.quoteTimer = setTimeout(quote, QUOTE_DELAY_MS);
    }

    async function quote() {
      if (!state.model) return;
      const seq = ++state.quoteSeq;
      const wanted = request();
      replace(price, h("span", { class: "muted" }, "pricing…"));
      try {
        const priced = await api("POST", "/admin/quote", {
          signal,
          body: {
            model_slug: wanted.model,
            prompt: wanted.prompt,
            input_images: wanted.inputImages,
            number_of_outputs: Number.isInteger(wanted.numberOfOutputs) && wanted.numberOfOutputs > 0 ? wanted.numberOfOutputs : null,
            parameters: wanted.parameters,
          },
        });
        if (seq !== state.quoteSeq) return;
        replace(price, h("strong", { class: "amount" }, money(priced.usd)), priced.display ? h("span", { class: "muted" }, ` · ${priced.display}`) : null);
        clearErrors(paramsSlot);
        clearErrors(outputsSlot);
      } catch (error) {
        if (error.name === "AbortError" || seq !== state.quoteSeq) return;
        replace(price, h("span", { class: "price-error" }, `No price: ${error.message}`));
        clearErrors(paramsSlot);
        clearErrors(outputsSlot);
        for (const f of error.fieldErrors || []) {
          if (f.field.startsWith("parameters.") || f.field === "number_of_outputs") markField(f);
        }
      }
    }

    // Marks one field from the live price check without moving focus (the person is typing).
    function markField(fieldError) {
      const holder = form.querySelector(`[data-field="${CSS.escape(fieldError.field)}"]`);
      if (!holder) return;
      const slot = holder.querySelector(".field-error");
      slot.textContent = fieldError.message;
      slot.hidden = false;
      holder.querySelector("input, select, textarea")?.setAttribute("aria-invalid", "true");
    }

    // --- events -----------------------------------------------------------------------------------

    typeGroup.addEventListener("change", (event) => {
      if (event.target.name === `${formId}-type`) setOutputType(event.target.value);
    });
    providerSelect.addEventListener("change", () => setProvider(providerSelect.value));
    modelSelect.addEventListener("change", () => setModel(models.find((m) => m.slug === modelSelect.value) || null));
    outputsSlot.addEventListener("input", scheduleQuote);
    paramsSlot.addEventListener("input", scheduleQuote);
    paramsSlot.addEventListener("change", scheduleQuote);
    prompt.addEventListener("change", scheduleQuote);
    onLabelLanguage(() => state.params?.relabel(), signal);

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!state.model) return;
      clearErrors(form);
      busy(submit, async () => {
        try {
          await onSubmit(request());
        } catch (error) {
          if (error.name === "AbortError") return;
          showErrors(form, error, ALIASES);
        }
      });
    });

    setOutputType(state.outputType);
    return form;
  }

  return { element: root };
}
