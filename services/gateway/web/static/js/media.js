// Previews of generated media: a picture, a playable video or a playable sound, by result type
// (or content type, or file extension when neither says).

import { h } from "./dom.js";

export function mediaKind(result) {
  const declared = String(result.type || result.mediaType || "").toLowerCase();
  if (["image", "video", "audio"].includes(declared)) return declared;
  const contentType = String(result.contentType || "");
  if (contentType.startsWith("image/")) return "image";
  if (contentType.startsWith("video/")) return "video";
  if (contentType.startsWith("audio/")) return "audio";
  const path = String(result.url || "").split("?")[0].toLowerCase();
  if (/\.(mp4|webm|mov|m4v)$/.test(path)) return "video";
  if (/\.(mp3|wav|ogg|m4a|aac|flac)$/.test(path)) return "audio";
  return "image";
}

/** The media element for one result; `label` describes it for screen readers. */
export function mediaPreview(result, { label = "Generated result", compact = false } = {}) {
  const url = result.url;
  if (!url) return h("span", { class: "muted" }, "no file");
  const kind = mediaKind(result);
  const cls = `media ${kind}${compact ? " compact" : ""}`;
  if (kind === "video") {
    return h("video", { class: cls, src: url, controls: true, preload: "metadata", "aria-label": label, playsinline: true });
  }
  if (kind === "audio") {
    return h("audio", { class: cls, src: url, controls: true, preload: "metadata", "aria-label": label });
  }
  return h("img", { class: cls, src: url, alt: label, loading: "lazy", decoding: "async" });
}

/** A preview with a link to the file itself. */
export function mediaFigure(result, { label = "Generated result", caption = "" } = {}) {
  return h(
    "figure",
    { class: "result" },
    mediaPreview(result, { label }),
    h(
      "figcaption",
      {},
      caption ? h("span", {}, caption) : null,
      h("a", { href: result.url, target: "_blank", rel: "noopener noreferrer" }, "Open file"),
    ),
  );
}
