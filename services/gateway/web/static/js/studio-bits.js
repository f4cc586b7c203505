// What the Studio pages share: where a shot or an episode sits (for breadcrumbs), the project's
// default models, and a frame's label.

import { studio } from "./api.js";
import { h } from "./dom.js";
import { money } from "./format.js";
import { details } from "./ui.js";

const TYPES = ["IMAGE", "VIDEO", "AUDIO"];

/** Select fields for a project's default model per output type (for entityForm). */
export function defaultModelFields(models) {
  return TYPES.map((type) => ({
    name: `default_${type}`,
    label: `Default ${type.toLowerCase()} model`,
    kind: "select",
    options: [{ value: "", label: "(none)" }, ...models.filter((m) => m.outputType === type).map((m) => ({ value: m.slug, label: `${m.name} (${m.slug})` }))],
  }));
}

/** {IMAGE: slug, …} from the form's default_IMAGE … values, leaving out the empty ones. */
export function defaultModelsOf(values) {
  const chosen = {};
  for (const type of TYPES) if (values[`default_${type}`]) chosen[type] = values[`default_${type}`];
  return chosen;
}

export async function episodeContext(episodeId, signal) {
  const episode = await studio("GetEpisode", { id: episodeId }, { signal });
  const project = await studio("GetProject", { id: episode.projectId }, { signal });
  return { episode, project };
}

export async function shotContext(shotId, signal) {
  const shot = await studio("GetShot", { id: shotId }, { signal });
  const { episode, project } = await episodeContext(shot.episodeId, signal);
  return { shot, episode, project };
}

export function projectHref(project) {
  return `#/studio/projects/${encodeURIComponent(project.slug)}`;
}

export function episodeHref(episode) {
  return `#/studio/episodes/${encodeURIComponent(episode.id)}`;
}

export function shotHref(shot) {
  return `#/studio/shots/${encodeURIComponent(shot.id)}`;
}

export function episodeName(episode) {
  return `Episode ${episode.number}${episode.title ? `: ${episode.title}` : ""}`;
}

export function shotName(shot) {
  return `Shot ${shot.shotNumber}${shot.title ? `: ${shot.title}` : ""}`;
}

/** "picture" for images and video frames, "sound" for audio: the two slots a shot chooses in. */
export function slotOf(frame) {
  return frame.mediaType === "AUDIO" ? "sound" : "picture";
}

/** A cost summary (GetCost, or an episode overview's `cost`). */
export function costDetails(cost) {
  return details([
    ["Total", h("strong", {}, money(cost.totalUsd))],
    ["Settled", money(cost.settledUsd)],
    ["Running (quoted)", money(cost.quotedUsd)],
    ["Tasks", String(cost.taskCount ?? 0)],
  ]);
}
