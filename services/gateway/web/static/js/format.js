// How values read on screen: money, times, sizes, durations, statuses.

import { h } from "./dom.js";

const usdFormat = new Intl.NumberFormat("en-US", {
  style: "currency",
  currency: "USD",
  minimumFractionDigits: 2,
  maximumFractionDigits: 6,
});

/** "$0.03" from the API's decimal strings ("0.03", "0.0025"); "—" when there is none. */
export function money(usd) {
  if (usd === undefined || usd === null || usd === "") return "—";
  const value = Number(usd);
  return Number.isFinite(value) ? usdFormat.format(value) : String(usd);
}

const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

/** A local date and time; the ISO value is kept in the <time> element for exactness. */
export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return h("time", { datetime: iso, title: iso }, dateTimeFormat.format(date));
}

/** "1.2 s", "3 min 5 s" between two ISO times (or from one until now). */
export function elapsed(fromIso, toIso) {
  if (!fromIso) return "—";
  const ms = (toIso ? new Date(toIso) : new Date()) - new Date(fromIso);
  return seconds(ms / 1000);
}

export function seconds(value) {
  if (value === undefined || value === null || Number.isNaN(Number(value))) return "—";
  const s = Number(value);
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const minutes = Math.floor(s / 60);
  return `${minutes} min ${Math.round(s - minutes * 60)} s`;
}

export function bytes(value) {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) return "—";
  const units = ["B", "KB", "MB", "GB"];
  let size = n;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? size : size.toFixed(1)} ${units[unit]}`;
}

export function percent(progress) {
  return `${Math.round(Math.max(0, Math.min(1, Number(progress) || 0)) * 100)}%`;
}

const STATUS_TONES = {
  PENDING: "neutral",
  PROCESSING: "info",
  SUCCESS: "success",
  FAILED: "danger",
  CANCELLED: "warning",
};

/** A coloured status label that also reads as text (colour is never the only cue). */
export function statusBadge(status) {
  const tone = STATUS_TONES[status] || "neutral";
  return h("span", { class: `badge ${tone}`, dataset: { status } }, status || "UNKNOWN");
}

export function yesNo(flag, yes = "yes", no = "no") {
  return h("span", { class: `badge ${flag ? "success" : "neutral"}` }, flag ? yes : no);
}

/** A progress bar with its value for assistive technology. */
export function progressBar(progress, label = "Progress") {
  const value = Math.round(Math.max(0, Math.min(1, Number(progress) || 0)) * 100);
  return h(
    "div",
    { class: "progress", role: "progressbar", "aria-label": label, "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": value },
    h("div", { class: "progress-fill", style: { width: `${value}%` } }),
    h("span", { class: "progress-text" }, `${value}%`),
  );
}

/** The first `length` characters of a long text, whole on hover. */
export function truncate(text, length = 80) {
  const value = String(text || "");
  if (value.length <= length) return value;
  return h("span", { title: value }, `${value.slice(0, length - 1)}…`);
}
