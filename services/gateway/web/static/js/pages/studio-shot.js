// A shot: the generation panel (composed prompt, editable; the characters' reference images),
// its frames grouped into takes with the chosen ones marked, its task history, its details,
// characters and cost.

import { studio } from "../api.js";
import { append, h, replace } from "../dom.js";
import { disclosure, entityForm } from "../entity-form.js";
import { field, input, textarea } from "../forms.js";
import { money, statusBadge, truncate, when } from "../format.js";
import { generationForm } from "../generation-form.js";
import { mediaPreview } from "../media.js";
import { navigate } from "../router.js";
import { costDetails, episodeHref, episodeName, projectHref, shotContext, shotName, slotOf } from "../studio-bits.js";
import { liveTaskCard } from "../task-card.js";
import { followTask } from "../follow.js";
import { fromMessage, isRunning, shownResults } from "../tasks.js";
import { busy, button, confirmed, empty, errorBox, loading, pageHeader, section, table, toast } from "../ui.js";

const HISTORY_PAGE = 10;
const FRAME_WAIT_MS = 15000;

export async function render(root, { params: [shotId], signal }) {
  const context = await shotContext(shotId, signal);
  const { episode, project } = context;
  let { shot } = context;
  const { characters } = await studio("ListCharacters", { project_id: project.id }, { signal });
  const { settings } = await studio("ListSettings", { project_id: project.id }, { signal });

  const title = h("span", {}, shotName(shot));
  const headerError = h("div");
  const framesSlot = h("div", {}, loading("Loading frames…"));
  const historySlot = h("div", {}, loading("Loading the task history…"));
  const costSlot = h("div", {}, loading("Adding up…"));
  const charactersSlot = h("div");
  const submitted = h("div", { class: "task-stack" });

  const deleteShot = button("Delete shot", () => {
    if (!confirmed(`Delete ${shotName(shot)} and its frames? Its tasks stay, unlinked.`)) return;
    busy(deleteShot, async () => {
      await studio("DeleteShot", { id: shot.id }, { signal });
      toast("Shot deleted");
      navigate(episodeHref(episode).slice(1));
    }, headerError);
  }, { tone: "danger" });

  // --- generation panel ---------------------------------------------------------------------------
  const panel = generationForm({
    signal,
    mode: "shot",
    outputType: "IMAGE",
    defaultModels: project.defaultModels || {},
    submitLabel: "Generate for this shot",
    compose: (outputType) => studio("ComposePrompt", { shot_id: shot.id, output_type: outputType }, { signal }),
    onSubmit: async (request) => {
      const made = fromMessage(
        await studio("GenerateForShot", {
          shot_id: shot.id,
          output_type: request.outputType,
          model: request.model,
          prompt: request.prompt,
          reference_images: request.inputImages,
          parameters: request.parameters,
          number_of_outputs: request.numberOfOutputs || 0,
        }, { signal }),
      );
      followed.add(made.id);
      let finished = false;
      submitted.prepend(
        liveTaskCard(made, {
          signal,
          onChange: (state) => {
            if (finished || isRunning(state)) return;
            finished = true;
            afterTask(state);
          },
        }),
      );
      loadHistory().catch(failed(historySlot));
    },
  });

  // Studio learns of a task's outcome from its events, a moment after the task itself ends:
  // frames and the history are read again until they show it (or a while has passed).
  async function afterTask(task) {
    const deadline = Date.now() + FRAME_WAIT_MS;
    while (!signal.aborted) {
      const [frames, history] = await Promise.all([loadFrames(), loadHistory()]);
      const framesIn = task.status !== "SUCCESS" || frames.some((f) => f.taskId === task.id);
      const historyIn = history.some((t) => t.id === task.id && t.status === task.status);
      if ((framesIn && historyIn) || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 400));
    }
    loadCost().catch(failed(costSlot));
  }

  // --- frames -------------------------------------------------------------------------------------
  const framesError = h("div");
  async function loadFrames() {
    const { frames } = await studio("ListFrames", { shot_id: shot.id }, { signal });
    if (!frames.length) {
      replace(framesSlot, empty("No frames yet: generate for this shot and its results become frames."));
      return frames;
    }
    // The frames of one task are one take; takes newest first, frames in number order.
    const takes = new Map();
    for (const frame of [...frames].sort((a, b) => b.frameNumber - a.frameNumber)) {
      const key = frame.taskId || `frame-${frame.id}`;
      if (!takes.has(key)) takes.set(key, []);
      takes.get(key).push(frame);
    }
    replace(
      framesSlot,
      framesError,
      [...takes.entries()].map(([key, takeFrames], index) =>
        h(
          "div",
          { class: "take" },
          h(
            "h3",
            {},
            `Take ${takes.size - index}`,
            takeFrames[0].taskId ? h("a", { href: `#/tasks/${encodeURIComponent(takeFrames[0].taskId)}`, class: "muted small" }, " task ", h("code", {}, takeFrames[0].taskId.slice(0, 12))) : h("span", { class: "muted small" }, key.startsWith("frame-") ? " (task deleted or added by hand)" : ""),
          ),
          h("ul", { class: "frames" }, [...takeFrames].reverse().map((frame) => frameCard(frame))),
        ),
      ),
    );
    return frames;
  }

  function frameCard(frame) {
    const label = `Frame ${frame.frameNumber}`;
    const choose = button(frame.selected ? "Chosen" : `Select as ${slotOf(frame)}`, null, {
      tone: frame.selected ? "subtle small" : "primary small",
      disabled: frame.selected,
      "aria-label": frame.selected ? `${label} is the chosen ${slotOf(frame)}` : `Select ${label} as the shot's ${slotOf(frame)}`,
    });
    choose.addEventListener("click", () =>
      busy(choose, async () => {
        await studio("SelectFrame", { id: frame.id }, { signal });
        toast(`${label} chosen`);
        await loadFrames();
      }, framesError),
    );
    const remove = button("Delete", () => {
      if (!confirmed(`Delete ${label}?`)) return;
      busy(remove, async () => {
        await studio("DeleteFrame", { id: frame.id }, { signal });
        await loadFrames();
      }, framesError);
    }, { tone: "subtle small danger", "aria-label": `Delete ${label}` });
    return h(
      "li",
      { class: `frame${frame.selected ? " selected" : ""}`, dataset: { frameId: frame.id, frameNumber: String(frame.frameNumber), selected: String(Boolean(frame.selected)) } },
      mediaPreview({ ...frame, type: frame.mediaType }, { label: `${label} of ${shotName(shot)}` }),
      h("div", { class: "frame-meta" }, h("strong", {}, label), frame.selected ? h("span", { class: "badge success" }, `chosen ${slotOf(frame)}`) : null),
      h("div", { class: "actions" }, choose, remove),
    );
  }

  // --- task history -------------------------------------------------------------------------------
  const followed = new Set();
  async function loadHistory() {
    const rows = [];
    const more = async (token) => {
      const page = await studio("ShotTaskHistory", { shot_id: shot.id, page_size: HISTORY_PAGE, page_token: token }, { signal });
      rows.push(...page.tasks.map(fromMessage));
      const next = page.nextPageToken
        ? button("Load more", (event) => busy(event.currentTarget, () => more(page.nextPageToken), historySlot), { tone: "subtle" })
        : null;
      replace(
        historySlot,
        table({
          caption: "Tasks of this shot",
          rows,
          emptyText: "No tasks for this shot yet.",
          rowAttrs: (t) => ({ dataset: { taskId: t.id } }),
          columns: [
            { label: "Created", render: (t) => when(t.createdAt) },
            { label: "Status", render: (t) => statusBadge(t.status) },
            { label: "Task", render: (t) => h("a", { href: `#/tasks/${encodeURIComponent(t.id)}` }, h("code", {}, t.id.slice(0, 12))) },
            { label: "Model", render: (t) => t.model },
            { label: "Prompt", render: (t) => truncate(t.prompt, 60), class: "wide" },
            { label: "Cost", render: (t) => money(t.chargedUsd ?? t.quotedUsd), class: "number" },
            { label: "Error", render: (t) => (t.error ? h("span", { title: t.error.message }, h("code", {}, t.error.code)) : "—") },
            { label: "Results", render: (t) => h("div", { class: "thumbs" }, shownResults(t).map((r, i) => mediaPreview(r, { compact: true, label: `Result ${i + 1} of task ${t.id}` }))) },
          ],
        }),
        next,
      );
    };
    await more("");
    // Tasks still running when the page opened (or submitted elsewhere) are followed too.
    for (const task of rows) {
      if (!isRunning(task) || followed.has(task.id)) continue;
      followed.add(task.id);
      followTask(task.id, () => {}, signal)
        .then((last) => last && !isRunning(last) && afterTask(last))
        .catch(() => {});
    }
    return rows;
  }

  // --- shot details -------------------------------------------------------------------------------
  const sceneRows = h("div", { class: "scene-rows" });
  const characterNames = h("datalist", { id: `characters-${shot.id}` }, characters.map((c) => h("option", { value: c.name })));
  function sceneRow(entry, index) {
    const name = input({ name: "character_name", value: entry.characterName || "", list: characterNames.id, autocomplete: "off" });
    const text = textarea({ name: "description", value: entry.description || "", rows: 2 });
    const row = h(
      "div",
      { class: "scene-row" },
      field({ label: `Character ${index + 1}`, control: name, field: `scene_descriptions[${index}].character_name` }),
      field({ label: "In this shot", control: text, field: `scene_descriptions[${index}].description` }),
      button("Remove", () => {
        row.remove();
        // Renumber, so labels and the field names errors refer to match the list again.
        drawScenes(readScenes().map((s) => ({ characterName: s.character_name, description: s.description })));
      }, { tone: "subtle small", "aria-label": `Remove scene description ${index + 1}` }),
    );
    return row;
  }
  function drawScenes(entries) {
    replace(sceneRows, entries.map(sceneRow));
  }
  function readScenes() {
    return [...sceneRows.querySelectorAll(".scene-row")]
      .map((row) => ({ character_name: row.querySelector("[name=character_name]").value.trim(), description: row.querySelector("[name=description]").value }))
      .filter((s) => s.character_name || s.description.trim());
  }
  drawScenes(shot.sceneDescriptions || []);
  const addScene = button("Add scene description", () => {
    sceneRows.append(sceneRow({}, sceneRows.children.length));
  }, { tone: "subtle small" });

  const shotForm = entityForm({
    label: "Edit shot",
    values: {
      title: shot.title,
      shot_number: shot.shotNumber,
      description: shot.description,
      action: shot.action,
      camera: shot.camera,
      duration_seconds: shot.durationSeconds,
      setting_id: shot.settingId,
    },
    fields: [
      { name: "title", label: "Title" },
      { name: "shot_number", label: "Shot number", kind: "number", min: 1, step: 1 },
      { name: "description", label: "Description", kind: "textarea", wide: true },
      { name: "action", label: "Action" },
      { name: "camera", label: "Camera" },
      { name: "duration_seconds", label: "Duration (seconds)", kind: "number", min: 0, step: 0.1 },
      { name: "setting_id", label: "Setting", kind: "select", options: [{ value: "", label: "(none)" }, ...settings.map((s) => ({ value: s.id, label: s.location }))] },
    ],
    extra: h("fieldset", { class: "scenes", dataset: { field: "scene_descriptions" } }, h("legend", {}, "Scene descriptions per character"), characterNames, sceneRows, addScene, h("p", { class: "field-error", hidden: true })),
    onSubmit: async (values) => {
      shot = await studio("UpdateShot", { id: shot.id, ...values, scene_descriptions: readScenes(), replace_scene_descriptions: true }, { signal });
      replace(title, shotName(shot));
      drawScenes(shot.sceneDescriptions || []);
      toast("Shot saved");
    },
  });

  // --- characters in the shot ---------------------------------------------------------------------
  const charactersError = h("div");
  function drawCharacters() {
    const byId = new Map(characters.map((c) => [c.id, c]));
    const linked = (shot.characterIds || []).map((id) => byId.get(id)).filter(Boolean);
    const unlinked = characters.filter((c) => !(shot.characterIds || []).includes(c.id));
    const picker = h("select", { "aria-label": "Character to add to the shot" }, unlinked.map((c) => h("option", { value: c.id }, c.name)));
    const link = button("Add to shot", () =>
      busy(link, async () => {
        shot = await studio("LinkCharacter", { shot_id: shot.id, character_id: picker.value }, { signal });
        drawCharacters();
      }, charactersError),
      { tone: "small", disabled: !unlinked.length },
    );
    replace(
      charactersSlot,
      charactersError,
      linked.length
        ? h(
            "ul",
            { class: "linked" },
            linked.map((c) => {
              const unlink = button("Remove", () =>
                busy(unlink, async () => {
                  shot = await studio("UnlinkCharacter", { shot_id: shot.id, character_id: c.id }, { signal });
                  drawCharacters();
                }, charactersError),
                { tone: "subtle small", "aria-label": `Remove ${c.name} from the shot` },
              );
              return h("li", {}, h("strong", {}, c.name), " ", h("span", { class: "muted" }, truncate(c.description, 60)), unlink);
            }),
          )
        : empty(characters.length ? "No character in this shot." : "The project has no characters yet."),
      unlinked.length ? h("div", { class: "inline" }, picker, link) : null,
      h("p", { class: "help" }, "Linked characters' descriptions and reference images go into the composed prompt."),
    );
  }

  async function loadCost() {
    replace(costSlot, costDetails(await studio("GetCost", { shot_id: shot.id }, { signal })));
  }

  const failed = (slot) => (error) => error.name !== "AbortError" && replace(slot, errorBox(error));

  append(
    root,
    pageHeader(title, {
      crumbs: [["Studio", "#/studio"], [project.name, projectHref(project)], [episodeName(episode), episodeHref(episode)], [shotName(shot)]],
      actions: [deleteShot],
      subtitle: shot.description || "",
    }),
    headerError,
    h(
      "div",
      { class: "split" },
      section("Generate for this shot", panel.element, submitted),
      section("Frames", framesSlot),
    ),
    section("Task history", historySlot),
    h("div", { class: "detail-grid" }, section("Shot", disclosure("Edit shot", shotForm)), section("Characters in this shot", charactersSlot), section("Cost", costSlot)),
  );
  drawCharacters();
  loadFrames().catch(failed(framesSlot));
  loadHistory().catch(failed(historySlot));
  loadCost().catch(failed(costSlot));
}
