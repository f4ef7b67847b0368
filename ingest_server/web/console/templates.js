// The files to fill in for a spec (GET /api/specs/{kind}/{name}/template): its header in the
// spec's own column order, as CSV or an Excel workbook with the rules, empty or with an example
// row that lands. Offered on the spec page, the upload form and an upload's page.
import { describe, download } from "./api.js";
import { h, notice } from "./dom.js";

const CHOICES = [["csv", false, "Empty CSV header"], ["xlsx", false, "Empty Excel workbook"],
                 ["csv", true, "CSV with an example row"], ["xlsx", true, "XLSX with an example row"]];

export function templateLinks(kind, name, { id = "templates", intro = "Templates to fill in (columns in the spec's order): " } = {}) {
  const message = h("span", { "aria-live": "polite" });
  const path = `/api/specs/${encodeURIComponent(kind)}/${encodeURIComponent(name)}/template`;
  const button = ([format, example, label]) => h("button", {
    type: "button", class: "button", id: `${id}-${format}${example ? "-example" : ""}`,
    onclick: async () => {
      try {
        await download(`${path}?format=${format}${example ? "&example=true" : ""}`,
                       `${name}-template.${format}`);
      } catch (err) {
        const { title, lines } = describe(err);
        message.replaceChildren(notice("error", title, ...lines));
      }
    } }, label);
  return h("p", { class: "templates", id }, intro, CHOICES.map((c) => [button(c), " "]), message);
}
