// A Studio project: its episodes, characters and settings, its defaults and its cost.

import { api, studio } from "../api.js";
import { append, h, replace } from "../dom.js";
import { disclosure, entityForm } from "../entity-form.js";
import { when } from "../format.js";
import { navigate } from "../router.js";
import { costDetails, defaultModelFields, defaultModelsOf, episodeHref } from "../studio-bits.js";
import { busy, button, confirmed, details, empty, errorBox, loading, pageHeader, section, table, toast } from "../ui.js";

export async function render(root, { params: [projectRef], signal }) {
  let project = await studio("GetProject", { id: projectRef }, { signal });
  const models = await api("GET", "/admin/models", { signal, query: { active: true } }).catch(() => ({ models: [] }));

  const episodesSlot = h("div", {}, loading("Loading episodes…"));
  const charactersSlot = h("div", {}, loading("Loading characters…"));
  const settingsSlot = h("div", {}, loading("Loading settings…"));
  const costSlot = h("div", {}, loading("Adding up…"));
  const summarySlot = h("div");
  const headerError = h("div");

  const drawSummary = () =>
    replace(
      summarySlot,
      details([
        ["Slug", h("code", {}, project.slug)],
        ["Description", project.description || "—"],
        ["Style prompt", project.stylePrompt || "—"],
        ["Default models", Object.entries(project.defaultModels || {}).map(([t, m]) => `${t}: ${m}`).join(", ") || "—"],
        ["Created", when(project.createdAt)],
      ]),
    );

  const deleteProject = button("Delete project", () => {
    if (!confirmed(`Delete the project “${project.name}” with all its episodes, shots, frames and exports? Tasks stay.`)) return;
    busy(deleteProject, async () => {
      await studio("DeleteProject", { id: project.id }, { signal });
      toast("Project deleted");
      navigate("/studio");
    }, headerError);
  }, { tone: "danger" });

  const editForm = entityForm({
    label: "Edit project",
    values: {
      name: project.name,
      description: project.description,
      style_prompt: project.stylePrompt,
      ...Object.fromEntries(Object.entries(project.defaultModels || {}).map(([t, m]) => [`default_${t}`, m])),
    },
    fields: [
      { name: "name", label: "Name", required: true },
      { name: "description", label: "Description", kind: "textarea", wide: true },
      { name: "style_prompt", label: "Style prompt", kind: "textarea", wide: true },
      ...defaultModelFields(models.models),
    ],
    onSubmit: async (values) => {
      project = await studio("UpdateProject", {
        id: project.id,
        name: values.name,
        description: values.description,
        style_prompt: values.style_prompt,
        default_models: defaultModelsOf(values),
        replace_default_models: true,
      }, { signal });
      drawSummary();
      toast("Project saved");
    },
  });

  append(
    root,
    pageHeader(project.name, { crumbs: [["Studio", "#/studio"], [project.name]], actions: [deleteProject] }),
    headerError,
    h("div", { class: "detail-grid" }, section("Project", summarySlot, disclosure("Edit project", editForm)), section("Cost", costSlot)),
    section("Episodes", episodesSlot),
    h("div", { class: "detail-grid" }, section("Characters", charactersSlot), section("Settings", settingsSlot)),
  );
  drawSummary();

  // --- episodes -----------------------------------------------------------------------------------
  const episodeForm = entityForm({
    label: "New episode",
    submitLabel: "Create episode",
    resetOnSuccess: true,
    fields: [
      { name: "title", label: "Title" },
      { name: "number", label: "Number", kind: "number", min: 0, step: 1, help: "Empty: the next free number." },
      { name: "synopsis", label: "Synopsis", kind: "textarea", wide: true },
      { name: "script", label: "Script", kind: "textarea", wide: true, rows: 5 },
    ],
    onSubmit: async (values) => {
      const created = await studio("CreateEpisode", { project_id: project.id, ...values }, { signal });
      toast(`Episode ${created.number} created`);
      navigate(episodeHref(created).slice(1));
    },
  });

  async function loadEpisodes() {
    const { episodes } = await studio("ListEpisodes", { project_id: project.id }, { signal });
    replace(
      episodesSlot,
      table({
        caption: "Episodes",
        rows: episodes,
        emptyText: "No episodes yet.",
        columns: [
          { label: "No.", render: (e) => String(e.number), class: "number" },
          { label: "Episode", render: (e) => h("a", { href: episodeHref(e) }, e.title || `Episode ${e.number}`) },
          { label: "Shots", render: (e) => String(e.shotCount ?? 0), class: "number" },
          { label: "Synopsis", render: (e) => e.synopsis || "—", class: "wide" },
        ],
      }),
      disclosure("New episode", episodeForm, !episodes.length),
    );
  }

  // --- characters ---------------------------------------------------------------------------------
  const characterFields = [
    { name: "name", label: "Name", required: true },
    { name: "description", label: "Description", kind: "textarea", wide: true, help: "Goes into every prompt of the shots the character is in." },
    { name: "reference_images", label: "Reference images", kind: "lines", wide: true, help: "Image URLs, one per line; sent to models that take images." },
  ];

  async function loadCharacters() {
    const { characters } = await studio("ListCharacters", { project_id: project.id }, { signal });
    const create = entityForm({
      label: "New character",
      submitLabel: "Add character",
      resetOnSuccess: true,
      fields: characterFields,
      onSubmit: async (values) => {
        await studio("CreateCharacter", { project_id: project.id, ...values }, { signal });
        toast(`${values.name} added`);
        await loadCharacters();
      },
    });
    replace(
      charactersSlot,
      characters.length
        ? h("ul", { class: "cards" }, characters.map((c) => characterCard(c)))
        : empty("No characters yet."),
      disclosure("New character", create, !characters.length),
    );
  }

  function characterCard(character) {
    const error = h("div");
    const remove = button("Delete", () => {
      if (!confirmed(`Delete the character ${character.name}? Shots keep their scene descriptions.`)) return;
      busy(remove, async () => {
        await studio("DeleteCharacter", { id: character.id }, { signal });
        await loadCharacters();
      }, error);
    }, { tone: "subtle small danger", "aria-label": `Delete ${character.name}` });
    const edit = entityForm({
      label: `Edit ${character.name}`,
      values: { name: character.name, description: character.description, reference_images: character.referenceImages },
      fields: characterFields,
      onSubmit: async (values) => {
        await studio("UpdateCharacter", { id: character.id, ...values, replace_reference_images: true }, { signal });
        toast(`${values.name} saved`);
        await loadCharacters();
      },
    });
    return h(
      "li",
      { class: "mini-card" },
      h("h3", {}, character.name),
      h("p", {}, character.description || h("span", { class: "muted" }, "No description.")),
      (character.referenceImages || []).length
        ? h("div", { class: "thumbs" }, character.referenceImages.map((url, i) => h("img", { class: "thumb", src: url, alt: `Reference ${i + 1} of ${character.name}`, loading: "lazy" })))
        : null,
      disclosure("Edit", edit),
      h("div", { class: "actions" }, remove),
      error,
    );
  }

  // --- settings -----------------------------------------------------------------------------------
  const settingFields = [
    { name: "location", label: "Location", required: true },
    { name: "time_of_day", label: "Time of day" },
    { name: "mood", label: "Mood" },
    { name: "description", label: "Description", kind: "textarea", wide: true },
  ];

  async function loadSettings() {
    const { settings } = await studio("ListSettings", { project_id: project.id }, { signal });
    const create = entityForm({
      label: "New setting",
      submitLabel: "Add setting",
      resetOnSuccess: true,
      fields: settingFields,
      onSubmit: async (values) => {
        await studio("CreateSetting", { project_id: project.id, ...values }, { signal });
        toast("Setting added");
        await loadSettings();
      },
    });
    replace(
      settingsSlot,
      settings.length ? h("ul", { class: "cards" }, settings.map((s) => settingCard(s))) : empty("No settings yet."),
      disclosure("New setting", create, !settings.length),
    );
  }

  function settingCard(setting) {
    const error = h("div");
    const remove = button("Delete", () => {
      if (!confirmed(`Delete the setting ${setting.location}? Its shots lose their setting.`)) return;
      busy(remove, async () => {
        await studio("DeleteSetting", { id: setting.id }, { signal });
        await loadSettings();
      }, error);
    }, { tone: "subtle small danger", "aria-label": `Delete ${setting.location}` });
    const edit = entityForm({
      label: `Edit ${setting.location}`,
      values: { location: setting.location, time_of_day: setting.timeOfDay, mood: setting.mood, description: setting.description },
      fields: settingFields,
      onSubmit: async (values) => {
        await studio("UpdateSetting", { id: setting.id, ...values }, { signal });
        toast("Setting saved");
        await loadSettings();
      },
    });
    return h(
      "li",
      { class: "mini-card" },
      h("h3", {}, setting.location),
      h("p", { class: "muted" }, [setting.timeOfDay, setting.mood].filter(Boolean).join(" · ") || "—"),
      setting.description ? h("p", {}, setting.description) : null,
      disclosure("Edit", edit),
      h("div", { class: "actions" }, remove),
      error,
    );
  }

  const failed = (slot) => (error) => error.name !== "AbortError" && replace(slot, errorBox(error));
  loadEpisodes().catch(failed(episodesSlot));
  loadCharacters().catch(failed(charactersSlot));
  loadSettings().catch(failed(settingsSlot));
  studio("GetCost", { project_id: project.id }, { signal })
    .then((cost) => replace(costSlot, costDetails(cost)))
    .catch(failed(costSlot));
}
