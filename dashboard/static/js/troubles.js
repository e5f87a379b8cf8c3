// Troubles: what is wrong with the equipment (node offline or missing, a gong
// that did not sound, low battery...). Open ones first; cleared ones on request.

import { get } from "./api.js";
import { t, troubleLabel, ago } from "./i18n.js";
import { state, on, emit, areaName } from "./state.js";
import { el, data, clear, dateTime } from "./util.js";
import { showError } from "./ui.js";

let root;
let listBox;
let showCleared;

export function mountTroubles(section) {
  root = section;
  clear(root);
  showCleared = el("input", { type: "checkbox", id: "troubles-cleared" });
  showCleared.addEventListener("change", async () => {
    if (showCleared.checked) await loadCleared();
    render();
  });
  root.append(
    el("div.view-head", {},
      el("h1", { "data-i18n": "troubles_title" }, t("troubles_title")),
      el("label.check", { for: "troubles-cleared" }, showCleared, el("span", { "data-i18n": "show_cleared" }, t("show_cleared")))),
    (listBox = el("div", { id: "trouble-list" })),
  );
  on("troubles", render);
  on("lang", render);
  render();
}

async function loadCleared() {
  try {
    const all = await get("/troubles?open=false&limit=200");
    for (const tr of all || []) state.troubles.set(tr.id, tr);
    emit("troubles");
  } catch (err) {
    showError(err);
  }
}

function subjectText(tr) {
  // A subject is a node id or an area path; show a place's name when it is one.
  return state.areas.has(tr.subject) ? areaName(tr.subject) : tr.subject;
}

function detailText(detail) {
  if (detail === null || detail === undefined || detail === "") return "";
  if (typeof detail !== "object") return String(detail);
  return Object.entries(detail).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ");
}

function render() {
  if (!listBox) return;
  clear(listBox);
  const open = [...state.troubles.values()].filter((tr) => !tr.cleared_ms);
  const badge = document.getElementById("trouble-count");
  if (badge) {
    badge.hidden = open.length === 0;
    badge.textContent = String(open.length);
  }
  const rows = [...state.troubles.values()]
    .filter((tr) => !tr.cleared_ms || (showCleared && showCleared.checked))
    .sort((a, b) => (a.cleared_ms ? 1 : 0) - (b.cleared_ms ? 1 : 0) || b.opened_ms - a.opened_ms);
  if (!rows.length) {
    listBox.append(el("p.empty", {}, t("troubles_none")));
    return;
  }
  const body = el("tbody", {});
  for (const tr of rows) {
    body.append(el("tr", { class: tr.cleared_ms ? "cleared" : "open", "data-trouble": tr.id },
      el("th", { scope: "row", "data-label": t("col_trouble") }, troubleLabel(tr.kind)),
      el("td", { "data-label": t("col_subject") }, data(subjectText(tr))),
      el("td", { "data-label": t("col_since") }, el("span", { title: dateTime(tr.opened_ms) }, ago(tr.opened_ms))),
      el("td", { "data-label": t("col_cleared") }, tr.cleared_ms ? dateTime(tr.cleared_ms) : t("still_open")),
      el("td", { "data-label": t("col_detail") }, data(detailText(tr.detail)))));
  }
  const head = el("tr", {}, ["col_trouble", "col_subject", "col_since", "col_cleared", "col_detail"].map((c) => el("th", { scope: "col" }, t(c))));
  listBox.append(el("div.table-wrap", {}, el("table.table.table-cards", {}, el("thead", {}, head), body)));
}
