// The admin token: asked once, kept in sessionStorage (this tab only, gone when it closes), sent
// as `Authorization: Bearer`. Never put in a URL or written to the console.

const STORAGE_KEY = "aigen.adminToken";

let pending = null; // one prompt at a time, shared by every request that needs the token

export function currentToken() {
  return sessionStorage.getItem(STORAGE_KEY) || "";
}

export function forgetToken() {
  sessionStorage.removeItem(STORAGE_KEY);
}

/**
 * Shows the token dialog and resolves with the token entered. `reason` says why it is asked
 * again (e.g. "the admin token is not valid").
 */
export function askForToken(reason = "") {
  if (pending) return pending;
  const dialog = document.getElementById("token-dialog");
  const form = document.getElementById("token-form");
  const input = document.getElementById("token-input");
  const why = document.getElementById("token-reason");
  why.textContent = reason;
  why.hidden = !reason;
  input.value = "";
  pending = new Promise((resolve) => {
    const submitted = (event) => {
      event.preventDefault();
      const entered = input.value.trim();
      if (!entered) {
        input.focus();
        return;
      }
      sessionStorage.setItem(STORAGE_KEY, entered);
      form.removeEventListener("submit", submitted);
      dialog.removeEventListener("cancel", refuseCancel);
      dialog.close();
      pending = null;
      resolve(entered);
    };
    // Without a token no page can show anything: Escape does not dismiss the dialog.
    const refuseCancel = (event) => event.preventDefault();
    form.addEventListener("submit", submitted);
    dialog.addEventListener("cancel", refuseCancel);
  });
  if (!dialog.open) dialog.showModal();
  input.focus();
  return pending;
}

/** The token, asking for it first when there is none. */
export async function token() {
  return currentToken() || askForToken();
}
