// Households that may alarm by phone (admins only, read-only): the registry file's
// [[households]] with their hamlet and numbers (docs/phone-alarms.md). Edited in the
// registry file, not here.

import { get } from "./api.js";
import { t } from "./i18n.js";
import { areaName } from "./state.js";
import { el, data, clear } from "./util.js";
import { showError } from "./ui.js";

let box;

export function mountHouseholds(container) {
  box = el("div", { id: "household-list" });
  container.append(el("section.card", { "aria-labelledby": "households-title" },
    el("h2", { id: "households-title", "data-i18n": "households_title" }, t("households_title")),
    el("p.hint", { "data-i18n": "households_hint" }, t("households_hint")), box));
}

export async function loadHouseholds() {
  if (!box) return;
  try {
    render((await get("/households")) || []);
  } catch (err) {
    showError(err);
  }
}

function render(rows) {
  clear(box);
  if (!rows.length) {
    box.append(el("p", {}, t("households_none")));
    return;
  }
  const head = el("tr", {}, ["household_name", "household_area", "household_phones"].map((c) => el("th", { scope: "col" }, t(c))));
  const body = el("tbody", {});
  for (const h of rows) {
    body.append(el("tr", { "data-household": h.id },
      el("td", {}, data(h.name || h.id)), el("td", {}, data(areaName(h.area))),
      el("td", {}, data(h.phones.join(", ")))));
  }
  box.append(el("div.table-wrap", {}, el("table.table", { id: "household-table" }, el("thead", {}, head), body)));
}
