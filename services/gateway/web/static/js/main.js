// Starts the admin UI: the header's controls, then the page the URL names.

import { askForToken, currentToken, forgetToken } from "./auth.js";
import { labelLanguage, setLabelLanguage } from "./labels.js";
import { refresh, start } from "./router.js";

const language = document.getElementById("label-language");
language.value = labelLanguage();
document.documentElement.dataset.labels = labelLanguage();
language.addEventListener("change", () => setLabelLanguage(language.value));

document.getElementById("sign-out").addEventListener("click", () => {
  forgetToken();
  askForToken("The token was forgotten. Enter it again to go on.").then(refresh);
});

// Ask before the first page loads its data, so the pages start with a token.
if (!currentToken()) askForToken().then(start);
else start();
