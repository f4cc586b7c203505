// Building DOM nodes from data. Text always goes in as text nodes, never as HTML, so prompts,
// error messages and provider answers cannot inject markup.

let nextId = 0;

const SAFE_SCHEMES = new Set(["http:", "https:", "data:", "blob:"]);

/** True for relative URLs and http(s)/data/blob ones; false for javascript: and the like. */
export function safeUrl(value) {
  const text = String(value).trim();
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text);
  return !scheme || SAFE_SCHEMES.has(`${scheme[1].toLowerCase()}:`);
}

/** A unique id for pairing a <label for> with its control. */
export function uid(prefix = "id") {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/**
 * h("button", {class: "primary", onclick: fn, disabled: true}, "Save")
 * Attributes: `class`, `dataset` (object), `style` (object), `on<event>` (function), booleans
 * (true sets, false/null/undefined leaves out), anything else as an attribute string.
 * Children: nodes, strings, numbers, arrays (flattened); null/false are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "style" && typeof value === "object") {
      Object.assign(el.style, value);
    } else if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "value" && "value" in el) {
      el.value = value;
    } else if (name === "checked" || name === "selected") {
      el[name] = Boolean(value);
    } else if ((name === "href" || name === "src") && !safeUrl(value)) {
      continue; // a result URL from a provider is data, not something to run
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

/** Appends children (see `h`: nodes, text, arrays; null and false skipped) to a node. */
export function append(parent, ...children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replaces everything inside `el` with `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}
