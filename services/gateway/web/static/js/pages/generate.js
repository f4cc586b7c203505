// Generate: fill in the form, submit as the admin, watch the task run, see what it made.

import { api } from "../api.js";
import { append, h } from "../dom.js";
import { generationForm } from "../generation-form.js";
import { liveTaskCard } from "../task-card.js";
import { fromDocument } from "../tasks.js";
import { empty, pageHeader } from "../ui.js";

export async function render(root, { query, signal }) {
  const results = h("div", { class: "task-stack" }, empty("Submitted tasks appear here, live."));
  let first = true;

  const { element } = generationForm({
    signal,
    mode: "admin",
    outputType: query.get("type") || "IMAGE",
    onSubmit: async (request) => {
      const task = await api("POST", "/admin/tasks", {
        signal,
        body: {
          model_slug: request.model,
          prompt: request.prompt,
          input_images: request.inputImages,
          number_of_outputs: request.numberOfOutputs || null,
          parameters: request.parameters,
        },
      });
      if (first) results.replaceChildren();
      first = false;
      // Newest first: the task just submitted is where the eye is.
      results.prepend(liveTaskCard(fromDocument(task), { signal }));
    },
  });

  append(
    root,
    pageHeader("Generate", { subtitle: "Choose what to make and with which model; the price follows the parameters." }),
    h(
      "div",
      { class: "split" },
      h("section", { class: "card", "aria-label": "Request" }, element),
      h("section", { class: "card", "aria-labelledby": "generated-title" }, h("h2", { id: "generated-title" }, "Results"), results),
    ),
  );
}
