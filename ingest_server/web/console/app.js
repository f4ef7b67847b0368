// The console: a hash router over a few pages. Every page talks to the public API with the token.
import { session } from "./api.js";
import { h, mount, notice } from "./dom.js";
import { signInPage } from "./page-signin.js";
import { uploadPage } from "./page-upload.js";
import { historyPage } from "./page-history.js";
import { uploadDetailPage } from "./page-detail.js";
import { specsPage, specPage } from "./page-specs.js";

const routes = [
  [/^#\/upload$/, uploadPage, "Upload"],
  [/^#\/history(?:\?(.*))?$/, historyPage, "History"],
  [/^#\/uploads\/([A-Za-z0-9_-]+)$/, uploadDetailPage, "Upload"],
  [/^#\/specs$/, specsPage, "Specs"],
  [/^#\/specs\/([a-z0-9_-]+)\/([^/?]+)$/, specPage, "Spec"],
];

function showNav(signedIn) {
  document.getElementById("nav").hidden = !signedIn;
  const s = session.get();
  document.getElementById("who").textContent = signedIn && s ? `Signed in as ${s.label || s.client}` : "";
  for (const a of document.querySelectorAll("#nav a")) {
    const href = a.getAttribute("href");
    const here = location.hash === href || location.hash.startsWith(href + "/") ||
      location.hash.startsWith(href + "?");
    if (here) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
}

// Renders run one after another, so a slow page never lands on top of a later one (for
// instance an upload page still loading when the user signs out).
let rendering = Promise.resolve();
function render() {
  rendering = rendering.then(renderNow, renderNow);
  return rendering;
}

function go(hash) {
  if (location.hash === hash) render(); else location.hash = hash; // hashchange renders
}

async function renderNow() {
  if (!session.valid()) {
    session.clear();
    showNav(false);
    document.title = "Sign in · ingest-server";
    await signInPage(() => go("#/upload"));
    return;
  }
  if (!location.hash || location.hash === "#" || location.hash === "#/") {
    location.replace("#/upload");
    return;
  }
  showNav(true);
  for (const [pattern, page, title] of routes) {
    const match = pattern.exec(location.hash);
    if (match) {
      document.title = `${title} · ingest-server`;
      try {
        await page(...match.slice(1).map((x) => (x === undefined ? "" : decodeURIComponent(x))));
      } catch (err) {
        mount(notice("error", "This page could not be shown", String(err.message || err)));
      }
      const heading = document.querySelector("main h1");
      if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
      return;
    }
  }
  mount(h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "#/upload" }, "Go to Upload")));
}

document.getElementById("signout").addEventListener("click", () => {
  session.clear();
  history.replaceState(null, "", location.pathname);
  render();
});
window.addEventListener("signed-out", () => render());
window.addEventListener("hashchange", render);
render();
