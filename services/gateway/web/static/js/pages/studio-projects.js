// Studio: the list of projects and a form to start one.

import { api, studio } from "../api.js";
import { append, h, replace } from "../dom.js";
import { disclosure, entityForm } from "../entity-form.js";
import { when } from "../format.js";
import { navigate } from "../router.js";
import { defaultModelFields, defaultModelsOf } from "../studio-bits.js";
import { errorBox, loading, pageHeader, section, table } from "../ui.js";

export async function render(root, { signal }) {
  const listing = h("div", {}, loading("Loading projects…"));
  const models = await api("GET", "/admin/models", { signal, query: { active: true } }).catch(() => ({ models: [] }));

  const form = entityForm({
    label: "New project",
    submitLabel: "Create project",
    fields: [
      { name: "name", label: "Name", required: true },
      { name: "slug", label: "Slug", required: true, help: "Lower-case letters, digits and inner hyphens, e.g. night-harbour.", placeholder: "night-harbour" },
      { name: "description", label: "Description", kind: "textarea", wide: true },
      { name: "style_prompt", label: "Style prompt", kind: "textarea", wide: true, help: "Starts every picture prompt of the project." },
      ...defaultModelFields(models.models),
    ],
    onSubmit: async (values) => {
      const created = await studio("CreateProject", {
        slug: values.slug,
        name: values.name,
        description: values.description,
        style_prompt: values.style_prompt,
        default_models: defaultModelsOf(values),
      }, { signal });
      navigate(`/studio/projects/${encodeURIComponent(created.slug)}`);
    },
  });

  append(
    root,
    pageHeader("Studio", { subtitle: "Projects → episodes → shots → frames." }),
    section("Projects", listing),
    section("New project", disclosure("Create a project", form, true)),
  );

  try {
    const { projects } = await studio("ListProjects", {}, { signal });
    replace(
      listing,
      table({
        caption: "Projects",
        rows: projects,
        emptyText: "No projects yet. Create the first one below.",
        columns: [
          { label: "Project", render: (p) => h("a", { href: `#/studio/projects/${encodeURIComponent(p.slug)}` }, h("strong", {}, p.name)) },
          { label: "Slug", render: (p) => h("code", {}, p.slug) },
          { label: "Episodes", render: (p) => String(p.episodeCount ?? 0), class: "number" },
          { label: "Description", render: (p) => p.description || "—", class: "wide" },
          { label: "Created", render: (p) => when(p.createdAt) },
        ],
      }),
    );
  } catch (error) {
    if (error.name !== "AbortError") replace(listing, errorBox(error));
  }
}
