// Troubles in words: what happened, where (area and node NAMES), since when
// (local time), what to do; grouped by area, the area with most troubles
// first. Never a raw id, path or millisecond count on screen.

import { get } from "./api.js";
import { t, troubleLabel, kindLabel, ago } from "./i18n.js";
import { state, on, emit, areaName, nodeName } from "./state.js";
import { el, data, clear, dateTime, withData } from "./util.js";
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
  on("nodes", render);
  on("areas", render);
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

/** The area a trouble belongs to: its subject when that is an area, else its node's area. */
function areaOf(tr) {
  if (state.areas.has(tr.subject)) return tr.subject;
  const n = state.nodes.get(tr.subject);
  return (n && n.area) || (tr.detail && tr.detail.area) || "";
}

/** [what, where] in words (where is data: names, kept in their own language). */
function describe(tr) {
  const d = tr.detail || {};
  let what = troubleLabel(tr.kind);
  let where;
  if (state.areas.has(tr.subject)) {
    where = areaName(tr.subject);
    if (tr.kind === "area_loss" && Array.isArray(d.nodes)) {
      what = t("tr_what_area", { n: d.nodes.length, names: "" }).replace(/[:：]\s*$/, "");
      where = `${where}: ${d.nodes.map(nodeName).join(", ")}`;
    }
    if (tr.kind === "power_cut" && Array.isArray(d.nodes)) {
      // ONE event for the whole area; its nodes (and their batteries) listed under it.
      what = t("tr_what_power_cut", { area: areaName(tr.subject), n: d.nodes.length });
      where = `${where}: ${d.nodes.map(batteryName).join(", ")}`;
    }
  } else if (["phone_call", "unknown_caller", "phone_flood"].includes(tr.kind)) {
    // A phone number, not a node: who called (if a household), where, what they wrote.
    const who = d.name ? `${d.name} (${tr.subject})` : tr.subject;
    where = d.area ? `${who}, ${areaName(d.area)}` : who;
    if (d.text) where = `${where}: "${d.text}"`;
  } else {
    const area = areaOf(tr);
    where = area ? t("tr_where_node", { node: nodeName(tr.subject), area: areaName(area) }) : nodeName(tr.subject);
    if ((tr.kind === "low_battery" || tr.kind === "on_battery") && typeof batteryOf(tr.subject, d) === "number") {
      what = t("tr_what_battery", { what, pct: batteryOf(tr.subject, d) });
    }
    if (tr.kind === "failed_to_sound") {
      const inc = d.incident_id ? state.incidents.get(d.incident_id) : null;
      what = t("tr_what_failed", { kind: inc ? kindLabel(inc.kind) : kindLabel(null) });
    }
  }
  return [what, where];
}

/** The node's battery now (from its heartbeats), else what the trouble recorded. */
function batteryOf(id, d) {
  const n = state.nodes.get(id);
  if (n && typeof n.battery_pct === "number") return n.battery_pct;
  return d && typeof d.battery_pct === "number" ? d.battery_pct : null;
}

function batteryName(id) {
  const pct = batteryOf(id, null);
  return typeof pct === "number" ? `${nodeName(id)} (${pct}%)` : nodeName(id);
}

function since(tr) {
  // A lost node's trouble says when it was last heard, not when the hub noticed.
  const d = tr.detail || {};
  return typeof d.since_ms === "number" ? d.since_ms : tr.opened_ms;
}

function todo(kind) {
  const key = `todo_${kind}`;
  return t(kind && ["node_offline", "node_missing", "area_loss", "noisy_node", "failed_to_sound", "sounder_fault", "unknown_node", "disabled_node", "low_battery", "on_battery", "outbox_backlog", "no_broker", "power_cut", "phone_call", "unknown_caller", "phone_flood"].includes(kind) ? key : "todo_other");
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
  const rows = [...state.troubles.values()].filter((tr) => !tr.cleared_ms || (showCleared && showCleared.checked));
  if (!rows.length) {
    listBox.append(el("p.empty", {}, t("troubles_none")));
    return;
  }
  const groups = new Map();
  for (const tr of rows) {
    const a = areaOf(tr);
    if (!groups.has(a)) groups.set(a, []);
    groups.get(a).push(tr);
  }
  const ordered = [...groups].sort((x, y) => y[1].filter((tr) => !tr.cleared_ms).length - x[1].filter((tr) => !tr.cleared_ms).length || areaName(x[0]).localeCompare(areaName(y[0])));
  for (const [area, items] of ordered) {
    items.sort((a, b) => (a.cleared_ms ? 1 : 0) - (b.cleared_ms ? 1 : 0) || since(a) - since(b));
    const openN = items.filter((tr) => !tr.cleared_ms).length;
    const section = el("section.trouble-area", { "data-area": area },
      el("h2", {}, area ? data(areaName(area)) : t("tr_group_other"), " ", el("span.count" + (openN ? ".count-alert" : ""), {}, String(openN))));
    const ul = el("ul.trouble-items", {});
    for (const tr of items) {
      const [what, where] = describe(tr);
      ul.append(el("li.trouble", { class: tr.cleared_ms ? "trouble cleared" : "trouble open", "data-trouble": tr.id, "data-kind": tr.kind },
        el("p.trouble-what", {}, el("strong", {}, tr.kind === "power_cut" ? withData(what, areaName(tr.subject)) : what)),
        el("p.trouble-where", {}, data(where)),
        el("p.trouble-when.muted", {}, `${t("tr_since", { time: dateTime(since(tr)) })} (${ago(since(tr))})`,
          tr.cleared_ms ? ` · ${t("col_cleared")}: ${dateTime(tr.cleared_ms)}` : ""),
        tr.cleared_ms ? null : el("p.trouble-todo", {}, t("tr_todo", { todo: todo(tr.kind) }))));
    }
    section.append(ul);
    listBox.append(section);
  }
}
