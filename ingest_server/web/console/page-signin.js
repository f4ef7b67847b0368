// Sign in: client id and secret (HTTP Basic to the token endpoint), or one click when it is open.
import { describe, openSignIn, signIn, tokenEndpointIsOpen } from "./api.js";
import { announce, field, h, mount, notice } from "./dom.js";

export async function signInPage(done) {
  const id = h("input", { name: "client_id", autocomplete: "username", required: true });
  const secret = h("input", { name: "client_secret", type: "password",
                              autocomplete: "current-password", required: true });
  const message = h("div", { id: "signin-message" });
  const fail = (err) => {
    const { title, lines } = describe(err);
    message.replaceChildren(notice("error", title, ...lines));
    announce(`${title}. ${lines.join(" ")}`);
  };
  const form = h("form", { class: "card narrow", onsubmit: async (e) => {
    e.preventDefault();
    try { await signIn(id.value.trim(), secret.value); done(); } catch (err) { fail(err); }
  } },
  field("Client id", id),
  field("Client secret", secret, "The secret your administrator gave you with the client id."),
  h("button", { type: "submit", class: "primary" }, "Sign in"));
  mount(h("h1", {}, "Sign in"),
    h("p", { class: "lead" }, "Send data files, see what was accepted and what was not, fix and send again."),
    message, form);
  if (await tokenEndpointIsOpen()) {
    form.before(h("div", { class: "card narrow" },
      h("p", {}, "This server lets anyone in (development mode)."),
      h("button", { type: "button", class: "primary", id: "open-signin", onclick: async () => {
        try { await openSignIn(); done(); } catch (err) { fail(err); }
      } }, "Continue without credentials")));
  }
}
