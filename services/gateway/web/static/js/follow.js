// Live progress of a task from the admin server-sent events endpoint.
//
// EventSource cannot send an Authorization header, and the token must not go in the URL, so the
// stream is read with fetch() and parsed here (the format is simple: blocks separated by a blank
// line, `event:` / `data:` / `id:` lines, `:` comments as keep-alives).

import { authorizedFetch } from "./api.js";
import { fromDocument, isRunning } from "./tasks.js";

const RECONNECT_DELAY_MS = 1000;
const MAX_RECONNECTS = 20;

function parseBlock(block) {
  let event = "message";
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (name === "event") event = value;
    else if (name === "data") data.push(value);
  }
  return data.length ? { event, data: data.join("\n") } : null;
}

async function readStream(taskId, onTask, signal) {
  const response = await authorizedFetch(`/admin/tasks/${encodeURIComponent(taskId)}/events`, {
    headers: { Accept: "text/event-stream" },
    signal,
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let last = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return last;
    buffer += value;
    let boundary = buffer.search(/\r?\n\r?\n/);
    while (boundary >= 0) {
      const block = buffer.slice(0, boundary);
      buffer = buffer.slice(boundary).replace(/^\r?\n\r?\n/, "");
      const parsed = parseBlock(block);
      if (parsed && parsed.event === "task") {
        last = fromDocument(JSON.parse(parsed.data));
        onTask(last);
      }
      boundary = buffer.search(/\r?\n\r?\n/);
    }
  }
}

/**
 * Calls `onTask(task)` with each state of the task until it ends (or `signal` aborts); resolves
 * with the last state. A dropped connection is reopened: the stream starts with the current state,
 * so nothing is missed.
 */
export async function followTask(taskId, onTask, signal) {
  let last = null;
  for (let attempt = 0; attempt <= MAX_RECONNECTS; attempt += 1) {
    try {
      last = (await readStream(taskId, onTask, signal)) || last;
    } catch (error) {
      if (error.name === "AbortError" || signal?.aborted) return last;
      if (error.name === "ApiError") throw error; // 404 and the like: reconnecting will not help
    }
    if (signal?.aborted || (last && !isRunning(last))) return last;
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_DELAY_MS));
  }
  return last;
}
