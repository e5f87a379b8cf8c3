// History: every incident, with filters (area, kind, time, outcome, drill)
// and a CSV download of exactly what the filters select.

import { get, BASE } from "./api.js";
import { t, kindLabel, stateLabel, outcomeLabel } from "./i18n.js";
import { state, on, areaName } from "./state.js";
import { el, data, clear, dateTime, dateInputMs, qs } from "./util.js";
import { select, showError } from "./ui.js";

const KINDS = ["fire", "theft", "robbery", "fight", "flood", "medical", "sos", "drill"];
const OUTCOMES = ["real", "false_alarm", "prank", "test"];
const PAGE = 100;
let root;
let form;
let tableBox;
let csvLink;
let moreBtn;
let rows = [];
let f = {};

export function mountHistory(section) {
  root = section;
  clear(root);
  const area = select([["", "all_areas"]], { name: "area" });
  const kind = select([["", "all_kinds"], ...KINDS.map((k) => [k, `kind_${k}`])], { name: "kind" });
  const outcome = select([["", "all_outcomes"], ...OUTCOMES.map((o) => [o, `outcome_${o}`])], { name: "outcome" });
  const drill = select([["", "drill_any"], ["false", "drill_no"], ["true", "drill_only"]], { name: "drill" });
  const since = el("input", { type: "date", name: "since" });
  const until = el("input", { type: "date", name: "until" });
  csvLink = el("a.btn.btn-ghost", { id: "csv-link", href: `${BASE}/incidents.csv`, download: "tiengmo-incidents.csv", "data-i18n": "download_csv" }, t("download_csv"));
  form = el("form.filters", { id: "history-filters" },
    filterField("h-area", "area", area),
    filterField("h-kind", "kind", kind),
    filterField("h-outcome", "outcome", outcome),
    filterField("h-drill", "drill_filter", drill),
    filterField("h-since", "from_date", since),
    filterField("h-until", "to_date", until),
    el("div.filter-buttons", {},
      el("button.btn.btn-primary", { type: "submit", "data-i18n": "apply_filters" }, t("apply_filters")),
      csvLink));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    load();
  });
  moreBtn = el("button.btn.btn-ghost", { type: "button", hidden: true, "data-i18n": "load_more" }, t("load_more"));
  moreBtn.addEventListener("click", () => load(true));
  root.append(
    el("div.view-head", {}, el("h1", { "data-i18n": "history_title" }, t("history_title"))),
    form,
    (tableBox = el("div", { id: "history-table" })),
    moreBtn,
  );
  const fillAreas = () => {
    const keep = area.value;
    while (area.options.length > 1) area.remove(1);
    for (const a of [...state.areas.values()].sort((x, y) => x.path.localeCompare(y.path))) {
      area.append(el("option", { value: a.path, lang: "vi" }, a.name || a.path));
    }
    area.value = keep;
  };
  on("areas", fillAreas);
  on("lang", render);
  fillAreas();
}

function filterField(id, key, control) {
  control.id = id;
  return el("div.field", {}, el("label", { for: id, "data-i18n": key }, t(key)), control);
}

function filters() {
  const v = (n) => form.elements[n].value;
  return {
    area: v("area"),
    kind: v("kind"),
    outcome: v("outcome"),
    drill: v("drill"),
    since_ms: dateInputMs(v("since")),
    until_ms: dateInputMs(v("until"), true),
  };
}

/** Called when the view is opened, and by the filter form. */
export async function load(more = false) {
  if (!form) return;
  if (!more) {
    f = filters();
    rows = [];
  }
  csvLink.href = `${BASE}/incidents.csv${qs(f)}`;
  const before = more && rows.length ? rows[rows.length - 1].opened_ms : undefined;
  try {
    const page = await get(`/incidents${qs({ ...f, limit: PAGE, before })}`);
    rows = rows.concat(page || []);
    moreBtn.hidden = !page || page.length < PAGE;
    render();
  } catch (err) {
    showError(err);
  }
}

function render() {
  if (!tableBox) return;
  clear(tableBox);
  if (!rows.length) {
    tableBox.append(el("p.empty", {}, t("history_none")));
    return;
  }
  const cols = ["col_time", "col_kind", "col_area", "col_origin", "col_state", "col_outcome", "col_handled_by", "col_presses", "col_note"];
  const head = el("tr", {}, cols.map((c) => el("th", { scope: "col" }, t(c))));
  const body = el("tbody", {});
  for (const inc of rows) {
    body.append(el("tr", { "data-id": inc.id },
      el("th", { scope: "row", "data-label": t("col_time") }, dateTime(inc.first_press_ms || inc.opened_ms)),
      el("td", { "data-label": t("col_kind") }, kindLabel(inc.kind), inc.drill ? el("span.badge.badge-drill", {}, t("drill")) : null),
      el("td", { "data-label": t("col_area") }, data(inc.area_name || areaName(inc.area))),
      el("td", { "data-label": t("col_origin") }, data(inc.origin_node || "–")),
      el("td", { "data-label": t("col_state") }, stateLabel(inc.state)),
      el("td", { "data-label": t("col_outcome") }, inc.outcome ? outcomeLabel(inc.outcome) : "–"),
      el("td", { "data-label": t("col_handled_by") }, data([inc.acknowledged_by, inc.resolved_by].filter(Boolean).join(" / ") || "–")),
      el("td.num", { "data-label": t("col_presses") }, inc.alarm_count ?? "–"),
      el("td", { "data-label": t("col_note") }, data(inc.note || ""))));
  }
  tableBox.append(el("div.table-wrap", {}, el("table.table.table-cards", {}, el("thead", {}, head), body)));
}
