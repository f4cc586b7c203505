// Talking to the gateway's admin API. Every answer that is not 2xx is an RFC 9457 problem
// document; it becomes an ApiError whose message is the problem's `detail` and whose
// `fieldErrors` name each bad field, so forms can put each message next to its field.

import { askForToken, forgetToken, token } from "./auth.js";

export class ApiError extends Error {
  constructor({ status = 0, code = "ERROR", detail = "", title = "", errors = [] } = {}) {
    super(detail || title || `request failed (${status})`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.fieldErrors = Array.isArray(errors) ? errors : [];
  }
}

/** `/admin/tasks?status=SUCCESS&model=x` from a path and an object (arrays repeat the name). */
export function withQuery(path, query = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    for (const item of [value].flat()) {
      if (item === undefined || item === null || item === "") continue;
      params.append(name, String(item));
    }
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

async function readProblem(response) {
  try {
    const body = await response.json();
    if (body && typeof body === "object") return { status: response.status, ...body };
  } catch {
    // not JSON (a proxy's error page): fall through to a generic problem
  }
  return { status: response.status, code: `HTTP_${response.status}`, detail: response.statusText };
}

/**
 * fetch() with the admin token. A 401 forgets the token, asks for it again (showing why) and
 * repeats the request; any other error status becomes an ApiError.
 */
export async function authorizedFetch(path, init = {}) {
  for (;;) {
    const headers = { Accept: "application/json", ...init.headers, Authorization: `Bearer ${await token()}` };
    let response;
    try {
      response = await fetch(path, { cache: "no-store", ...init, headers });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new ApiError({ code: "NETWORK", detail: "The gateway could not be reached. Is it running?" });
    }
    if (response.status === 401) {
      const problem = await readProblem(response);
      forgetToken();
      await askForToken(problem.detail || "The admin token was refused.");
      continue;
    }
    if (!response.ok) throw new ApiError(await readProblem(response));
    return response;
  }
}

/** JSON in, JSON out. `query` is added to the path; `body` is sent as JSON. */
export async function api(method, path, { body, query, signal } = {}) {
  const init = { method, signal };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { "Content-Type": "application/json" };
  }
  const response = await authorizedFetch(withQuery(path, query), init);
  if (response.status === 204) return null;
  return response.json();
}

/** A StudioService call through the gateway: the request message in, the response message out. */
export function studio(method, body = {}, options = {}) {
  return api("POST", `/admin/studio/${method}`, { ...options, body });
}
