// An episode: the overview of its shots in cut order (chosen picture and sound, frames, running
// tasks, cost), new shots, reordering, editing, and exports with their links.

import { studio } from "../api.js";
import { append, h, replace } from "../dom.js";
import { disclosure, entityForm } from "../entity-form.js";
import { clearErrors, field, formError, input, select, showErrors } from "../forms.js";
import { bytes, money, seconds, when } from "../format.js";
import { mediaPreview } from "../media.js";
import { navigate } from "../router.js";
import { episodeContext, episodeName, projectHref, shotHref, shotName } from "../studio-bits.js";
import { busy, button, confirmed, empty, errorBox, loading, pageHeader, section, table, toast } from "../ui.js";

const EXPORT_KINDS = [
  { value: "storyboard_html", label: "Storyboard (HTML page)" },
  { value: "storyboard_pdf", label: "Storyboard (PDF contact sheet)" },
  { value: "animatic", label: "Animatic (MP4 video)" },
  { value: "otio", label: "Timeline (OpenTimelineIO)" },
  { value: "fcpxml", label: "Timeline (FCP 7 XML)" },
];

export async function render(root, { params: [episodeId], signal }) {
  const context = await episodeContext(episodeId, signal);
  const { project } = context;
  let { episode } = context;
  const overviewSlot = h("div", {}, loading("Loading the overview…"));
  const totalsSlot = h("div");
  const exportsSlot = h("div", {}, loading("Loading exports…"));
  const headerError = h("div");
  const title = h("span", {}, episodeName(episode));

  const deleteEpisode = button("Delete episode", () => {
    if (!confirmed(`Delete ${episodeName(episode)} with all its shots, frames and exports? Tasks stay.`)) return;
    busy(deleteEpisode, async () => {
      await studio("DeleteEpisode", { id: episode.id }, { signal });
      toast("Episode deleted");
      navigate(projectHref(project).slice(1));
    }, headerError);
  }, { tone: "danger" });

  const editForm = entityForm({
    label: "Edit episode",
    values: { number: episode.number, title: episode.title, synopsis: episode.synopsis, script: episode.script },
    fields: [
      { name: "title", label: "Title" },
      { name: "number", label: "Number", kind: "number", min: 1, step: 1 },
      { name: "synopsis", label: "Synopsis", kind: "textarea", wide: true },
      { name: "script", label: "Script", kind: "textarea", wide: true, rows: 6 },
    ],
    onSubmit: async (values) => {
      episode = await studio("UpdateEpisode", { id: episode.id, ...values }, { signal });
      replace(title, episodeName(episode));
      toast("Episode saved");
    },
  });

  const settings = await studio("ListSettings", { project_id: project.id }, { signal }).catch(() => ({ settings: [] }));
  const shotForm = entityForm({
    label: "New shot",
    submitLabel: "Create shot",
    resetOnSuccess: true,
    fields: [
      { name: "title", label: "Title" },
      { name: "shot_number", label: "Shot number", kind: "number", min: 0, step: 1, help: "Empty: the next free number." },
      { name: "description", label: "Description", kind: "textarea", wide: true, help: "What the shot shows; it goes into the composed prompt." },
      { name: "action", label: "Action" },
      { name: "camera", label: "Camera", placeholder: "close-up, dolly in…" },
      { name: "duration_seconds", label: "Duration (seconds)", kind: "number", min: 0, step: 0.1 },
      { name: "setting_id", label: "Setting", kind: "select", options: [{ value: "", label: "(none)" }, ...settings.settings.map((s) => ({ value: s.id, label: s.location }))] },
    ],
    onSubmit: async (values) => {
      const created = await studio("CreateShot", { episode_id: episode.id, ...values }, { signal });
      toast(`${shotName(created)} created`);
      navigate(shotHref(created).slice(1));
    },
  });

  append(
    root,
    pageHeader(title, {
      crumbs: [["Studio", "#/studio"], [project.name, projectHref(project)], [episodeName(episode)]],
      actions: [deleteEpisode],
    }),
    headerError,
    section("Shots", totalsSlot, overviewSlot, disclosure("New shot", shotForm)),
    h("div", { class: "detail-grid" }, section("Exports", exportForm(), exportsSlot), section("Episode", episode.synopsis ? h("p", {}, episode.synopsis) : null, disclosure("Edit episode", editForm))),
  );

  // --- overview -----------------------------------------------------------------------------------
  const reorderError = h("div");
  async function loadOverview() {
    const overview = await studio("EpisodeOverview", { episode_id: episode.id }, { signal });
    const shots = overview.shots || [];
    replace(
      totalsSlot,
      h(
        "p",
        { class: "totals" },
        h("span", {}, `${shots.length} shot${shots.length === 1 ? "" : "s"}`),
        h("span", {}, `length ${seconds(overview.totalDurationSeconds || 0)}`),
        h("span", {}, `cost ${money(overview.cost?.totalUsd ?? overview.costUsd)}`),
      ),
    );
    if (!shots.length) {
      replace(overviewSlot, empty("No shots yet. Create the first one below."));
      return;
    }
    const order = shots.map((s) => s.shot.id);
    const move = (index, delta) => async () => {
      const next = [...order];
      [next[index], next[index + delta]] = [next[index + delta], next[index]];
      await studio("ReorderShots", { episode_id: episode.id, shot_ids: next }, { signal });
      await loadOverview();
    };
    replace(
      overviewSlot,
      reorderError,
      h(
        "ol",
        { class: "shot-strip", "aria-label": "Shots in cut order" },
        shots.map((item, index) => {
          const { shot } = item;
          const up = button("↑", null, { tone: "icon-button", "aria-label": `Move ${shotName(shot)} earlier`, disabled: index === 0 });
          const down = button("↓", null, { tone: "icon-button", "aria-label": `Move ${shotName(shot)} later`, disabled: index === shots.length - 1 });
          up.addEventListener("click", () => busy(up, move(index, -1), reorderError));
          down.addEventListener("click", () => busy(down, move(index, 1), reorderError));
          const running = (item.runningTasks || []).length;
          return h(
            "li",
            { class: "shot-card", dataset: { shotId: shot.id } },
            h("div", { class: "shot-picture" }, item.selectedFrame ? mediaPreview({ ...item.selectedFrame, type: item.selectedFrame.mediaType }, { label: `Chosen picture of ${shotName(shot)}` }) : h("span", { class: "muted" }, "no picture chosen")),
            h("h3", {}, h("a", { href: shotHref(shot) }, shotName(shot))),
            h("p", { class: "muted" }, [`${seconds(shot.durationSeconds || 0)}`, `${item.frameCount || 0} frame(s)`, money(item.costUsd)].join(" · ")),
            running ? h("p", {}, h("span", { class: "badge info" }, `${running} running`)) : null,
            item.selectedAudio ? mediaPreview({ ...item.selectedAudio, type: "audio" }, { label: `Chosen sound of ${shotName(shot)}`, compact: true }) : null,
            h("div", { class: "actions" }, up, down),
          );
        }),
      ),
    );
  }

  // --- exports ------------------------------------------------------------------------------------
  function exportForm() {
    const kind = select(EXPORT_KINDS, { name: "kind", value: "storyboard_html" });
    const width = input({ type: "number", name: "width", min: 16, step: 2, placeholder: "1280" });
    const height = input({ type: "number", name: "height", min: 16, step: 2, placeholder: "720" });
    const fps = input({ type: "number", name: "fps", min: 1, step: 1, placeholder: "25" });
    const go = button("Export", null, { tone: "primary", type: "submit" });
    const form = h(
      "form",
      { class: "entity-form", novalidate: true, "aria-label": "Export the episode" },
      h("div", { class: "grid" }, field({ label: "Kind", control: kind, field: "kind" }), field({ label: "Width", control: width, field: "width" }), field({ label: "Height", control: height, field: "height" }), field({ label: "Frames per second", control: fps, field: "fps" })),
      h("p", { class: "help" }, "Every shot needs a chosen picture. Animatics take a while: the page waits for the file."),
      formError(),
      h("div", { class: "actions" }, go),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      clearErrors(form);
      busy(go, async () => {
        try {
          const made = await studio("ExportEpisode", {
            episode_id: episode.id,
            kind: kind.value,
            width: Number(width.value) || 0,
            height: Number(height.value) || 0,
            fps: Number(fps.value) || 0,
          }, { signal });
          toast(`Export ready: ${made.kind}`);
          await loadExports();
        } catch (error) {
          if (error.name !== "AbortError") showErrors(form, error);
        }
      });
    });
    return form;
  }

  async function loadExports() {
    const { exports } = await studio("ListExports", { episode_id: episode.id }, { signal });
    replace(
      exportsSlot,
      table({
        caption: "Exports",
        rows: exports,
        emptyText: "No exports yet.",
        columns: [
          { label: "Made", render: (e) => when(e.createdAt) },
          { label: "Kind", render: (e) => EXPORT_KINDS.find((k) => k.value === e.kind)?.label || e.kind },
          { label: "Size", render: (e) => bytes(e.size), class: "number" },
          { label: "File", render: (e) => h("a", { href: e.url, target: "_blank", rel: "noopener noreferrer", download: "" }, "Download") },
        ],
      }),
    );
  }

  const failed = (slot) => (error) => error.name !== "AbortError" && replace(slot, errorBox(error));
  loadOverview().catch(failed(overviewSlot));
  loadExports().catch(failed(exportsSlot));
}
